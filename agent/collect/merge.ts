import type { JsonObject } from './types.js';

export function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Deep merge, later wins: objects merge key by key; any other value
 * (arrays included, as in os-collect-config) replaces what was there.
 */
export function deepMerge(...layers: JsonObject[]): JsonObject {
  const out: JsonObject = {};
  for (const layer of layers) mergeInto(out, layer);
  return out;
}

function mergeInto(target: JsonObject, src: JsonObject): void {
  for (const [k, v] of Object.entries(src)) {
    if (k === '__proto__') continue;
    const cur = target[k];
    if (isPlainObject(cur) && isPlainObject(v)) {
      const copy: JsonObject = { ...cur };
      mergeInto(copy, v);
      target[k] = copy;
    } else {
      target[k] = isPlainObject(v) ? deepMerge(v) : v;
    }
  }
}

/** JSON with sorted keys, so equal documents hash equal whatever the key order. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isPlainObject(v)) {
    const o: JsonObject = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k]);
    return o;
  }
  return v;
}
