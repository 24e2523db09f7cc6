// clean.sh: removes what a local run leaves (uploaded data, reports, events, copies delivered to `file` targets), at
// the folders the server's own settings give: the environment, `-appconf FILE`, then the defaults (all under
// ./uploads). Sender configs, the delivery config and anything holding the working directory are never removed.
import { readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { appconfPath, loadAppconf } from '../internal/config/appconf.js';
import { ConfigError, loadConfig } from '../internal/config/config.js';
import { loadDeliveryConfig } from '../internal/delivery/config.js';

const contains = (outer: string, inner: string) => inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dryRun = args.includes('--dry-run');
  const file = appconfPath(args.filter((a) => a !== '--dry-run'));
  if (file) loadAppconf(file, process.env);
  const config = loadConfig(process.env);
  const abs = (p: string) => path.resolve(p);

  const root = abs(config.storage.localFolderUploadsTus);
  const wanted = [path.join(root, config.tus.uploadPrefix), abs(config.reports.localReportsFolder), abs(config.events.localEventsFolder)];
  try {
    const delivery = await loadDeliveryConfig(config.delivery.configFile);
    for (const t of delivery.targets.values()) if (t.type === 'file') wanted.push(abs(t.path));
  } catch (err) {
    process.stderr.write(`clean: file targets left alone: ${(err as Error).message}\n`);
  }

  // A mistaken setting (LOCAL_REPORTS_FOLDER=., a target at /) must not wipe what the server only reads, or more.
  const keep = [abs(config.manifest.uploadConfigPath), abs(config.delivery.configFile)];
  const refuse = (p: string) =>
    p === path.parse(p).root || contains(p, process.cwd()) || contains(p, os.homedir()) ? 'it holds the working or home directory' : keep.some((k) => contains(p, k)) ? 'it holds configuration' : undefined;

  const remove = async (p: string) => {
    const why = refuse(p);
    if (why) return void process.stderr.write(`clean: kept ${p}: ${why}\n`);
    if (!(await exists(p))) return;
    process.stdout.write(`${dryRun ? 'would remove' : 'removed'} ${p}\n`);
    if (!dryRun) await rm(p, { recursive: true, force: true });
  };
  for (const p of [...new Set(wanted)]) await remove(p);
  // The uploads folder itself once nothing else is left in it (as DEX's clean.sh removes ./uploads).
  if (!dryRun && (await exists(root)) && (await readdir(root)).length === 0) await remove(root);
}

main().catch((err: unknown) => {
  process.stderr.write(`clean: ${err instanceof ConfigError ? `configuration error: ${err.message}` : (err as Error).message}\n`);
  process.exit(1);
});
