// Child process of test/delivery/targets-memory.test.ts: delivers a generated stream of the given size to one
// target and prints its resident-memory figures as one JSON line. Run alone so that nothing else in the process
// allocates: the peak (VmHWM) is reset after start-up, so it measures the delivery only.
import { readFileSync, writeFileSync } from 'node:fs';
import { pino } from 'pino';
import type { TargetConfig } from '../../internal/delivery/config.js';
import { closeTargets, createTargets } from '../../internal/delivery/targets/index.js';
import { generatedStream } from './delivery.js';

interface ChildInput {
  target: TargetConfig;
  path: string;
  size: number;
}

const status = (field: string): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`${field} not readable`);
  return Number(m[1]) * 1024;
};

const input = JSON.parse(process.argv[2]!) as ChildInput;
const log = pino({ level: 'warn' });
const targets = await createTargets(new Map([[input.target.name, input.target]]), log);
const target = targets.get(input.target.name)!;
const gen = generatedStream(input.size);

// Writing 5 to clear_refs resets the peak resident size (VmHWM) to the current one (Linux).
writeFileSync('/proc/self/clear_refs', '5');
const baseline = status('VmRSS');
const result = await target.deliver({ path: input.path, size: input.size, body: gen.stream, metadata: { filename: 'memory.bin', data_stream_id: 'memory' } });
const peak = status('VmHWM');
await closeTargets(targets);
console.log(JSON.stringify({ baseline, peak, growth: peak - baseline, generated: gen.digest(), ...result }));
