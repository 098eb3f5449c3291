import { readFile } from 'node:fs/promises';
import type { JsonObject } from './types.js';

const PREFIX = 'osp.';

/**
 * Reads `osp.*` keys from a kernel command line into a nested object:
 * `osp.server=h:6385 osp.net.mtu=9000` → `{osp: {server: 'h:6385', net: {mtu: '9000'}}}`.
 * Values stay strings (the kernel has no types); a bare `osp.flag` is `true`.
 * Double quotes group a value containing spaces, as the kernel's own parser does.
 */
export function parseCmdline(text: string): JsonObject {
  const out: JsonObject = {};
  for (const word of splitWords(text)) {
    if (!word.startsWith(PREFIX)) continue;
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    const value: unknown = eq < 0 ? true : word.slice(eq + 1);
    const parts = key.split('.').filter((p) => p.length > 0);
    if (parts.length < 2 || parts.includes('__proto__')) continue;
    let node = out;
    for (const p of parts.slice(0, -1)) {
      const next = node[p];
      if (typeof next !== 'object' || next === null) node[p] = {};
      node = node[p] as JsonObject;
    }
    node[parts[parts.length - 1]] = value;
  }
  return out;
}

function splitWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quoted = false;
  let has = false;
  for (const ch of text) {
    if (ch === '"') {
      quoted = !quoted;
      has = true;
    } else if (!quoted && /\s/.test(ch)) {
      if (has) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) words.push(cur);
  return words;
}

/** A missing command line (containers, `--root` trees) is an empty source. */
export async function readCmdline(path: string): Promise<JsonObject> {
  try {
    return parseCmdline(await readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
}
