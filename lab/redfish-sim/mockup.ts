import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export type Resource = Record<string, unknown>;

const cache = new Map<string, Promise<Map<string, Resource>>>();

/** Reads a DMTF mockup tree (`<P>/index.json` = `/redfish/v1/<P>`) into path → resource. */
export function loadMockup(dir: string): Promise<Map<string, Resource>> {
  let p = cache.get(dir);
  if (!p) {
    p = readTree(dir);
    cache.set(dir, p);
  }
  // Every simulator owns its copy: state changes must not leak between BMCs.
  return p.then((m) => new Map([...m].map(([k, v]) => [k, structuredClone(v)])));
}

async function readTree(dir: string): Promise<Map<string, Resource>> {
  const out = new Map<string, Resource>();
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.isDirectory()) await walk(rel ? `${rel}/${e.name}` : e.name);
      else if (e.name === 'index.json') {
        const body = JSON.parse(await readFile(join(dir, rel, e.name), 'utf8')) as Resource;
        out.set(rel ? `/redfish/v1/${rel}` : '/redfish/v1', body);
      }
    }
  };
  await walk('');
  return out;
}
