import { OspError } from '../common/errors.js';
import { isPlainObject } from './collect/merge.js';

export const KEY_TYPES = ['str', 'int', 'bool', 'json'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/**
 * os-apply-config `--key` semantics for hook scripts: a dotted path into the
 * merged config, printed as the requested type; `fallback` (--default) stands
 * in for a missing key and is checked against the type too.
 */
export function configGet(config: Record<string, unknown>, key: string, type: KeyType, fallback?: string): string {
  const found = lookup(config, key);
  if (found === undefined) {
    if (fallback === undefined) {
      throw new OspError('AGENT_CONFIG_KEY_NOT_FOUND', `config key "${key}" not found (pass --default to use a value instead)`, { key });
    }
    return format(key, type === 'json' ? parseJsonDefault(key, fallback) : fallback, type);
  }
  return format(key, found, type);
}

function lookup(config: Record<string, unknown>, key: string): unknown {
  let node: unknown = config;
  for (const part of key.split('.')) {
    if (!isPlainObject(node) || !Object.prototype.hasOwnProperty.call(node, part)) return undefined;
    node = node[part];
  }
  return node === null ? undefined : node;
}

function format(key: string, v: unknown, type: KeyType): string {
  switch (type) {
    case 'json':
      return JSON.stringify(v);
    case 'str':
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
      throw wrongType(key, v, 'a string, number or boolean (use --type json for objects and lists)');
    case 'int': {
      const s = typeof v === 'number' || typeof v === 'string' ? String(v).trim() : '';
      if (/^[-+]?\d+$/.test(s)) return String(Number(s));
      throw wrongType(key, v, 'an integer');
    }
    case 'bool': {
      const s = typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string' ? String(v).toLowerCase() : '';
      if (['true', '1', 'yes', 'on'].includes(s)) return 'true';
      if (['false', '0', 'no', 'off', ''].includes(s)) return 'false';
      throw wrongType(key, v, 'a boolean (true/false, yes/no, on/off, 1/0)');
    }
  }
}

function parseJsonDefault(key: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new OspError('AGENT_CONFIG_TYPE_INVALID', `--default for "${key}" is ${JSON.stringify(text)}; expected JSON with --type json`, { key });
  }
}

function wrongType(key: string, v: unknown, expected: string): OspError {
  return new OspError('AGENT_CONFIG_TYPE_INVALID', `config key "${key}" is ${JSON.stringify(v)}; expected ${expected}`, { key });
}
