// What a running server shows from outside: its /health and its report files.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from './http.js';
import type { RunningServer } from './server.js';

export interface Health {
  status: string;
  services: Array<{ service: string; status: string; health_issue: string }>;
}

export const health = async (s: RunningServer): Promise<Health> => JSON.parse((await request({ method: 'GET', url: `${s.url}/health` })).body) as Health;

/** One /health entry by name (undefined when there is none). */
export const entry = async (s: RunningServer, name: string) => (await health(s)).services.find((x) => x.service === name);

/** Every complete report line in the server's report files for `id`, by stage (files are written in publish order). */
export async function reportFiles(s: RunningServer, id: string): Promise<Map<string, string[]>> {
  const folder = path.join(s.dir, 'uploads', 'reports');
  const out = new Map<string, string[]>();
  for (const name of await readdir(folder)) {
    if (!name.startsWith(`${id}_`)) continue;
    const text = await readFile(path.join(folder, name), 'utf8');
    out.set(name.slice(id.length + 1), text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean));
  }
  return out;
}
