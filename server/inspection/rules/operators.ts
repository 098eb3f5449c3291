import { BlockList, isIP } from 'node:net';
import type { ConditionOp } from './types.js';

/**
 * The comparison behind each condition op, with inspector's semantics:
 * numeric when both sides read as numbers (so "16" ge 8 and true eq true
 * hold), otherwise a plain comparison of the values as given.
 */

function asNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

function compare(field: unknown, value: unknown): number | null {
  const a = asNumber(field);
  const b = asNumber(value);
  if (a !== null && b !== null) return a === b ? 0 : a < b ? -1 : 1;
  if (typeof field === 'string' && typeof value === 'string') return field === value ? 0 : field < value ? -1 : 1;
  if (field === null || typeof field === 'object' || value === null || typeof value === 'object') {
    return JSON.stringify(field) === JSON.stringify(value) ? 0 : null;
  }
  return String(field) === String(value) ? 0 : null;
}

/**
 * Python's re accepts inline flags such as (?i) at the start and named
 * groups as (?P<n>…); rules written for inspector use both.
 */
export function compileRegex(source: string): RegExp {
  let flags = '';
  let body = source;
  const lead = /^\(\?([aimsux]+)\)/.exec(body);
  if (lead) {
    for (const f of lead[1]) if (f === 'i' || f === 's' || f === 'm') flags += f;
    body = body.slice(lead[0].length);
  }
  return new RegExp(body.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>'), flags);
}

/** A CIDR of either family, for `in-net`. */
export function parseNetwork(cidr: unknown): BlockList | null {
  if (typeof cidr !== 'string') return null;
  const [addr, prefix, extra] = cidr.split('/');
  const family = isIP(addr);
  if (!family || extra !== undefined) return null;
  const bits = prefix === undefined ? (family === 4 ? 32 : 128) : /^\d+$/.test(prefix) ? Number(prefix) : NaN;
  if (!(bits >= 0 && bits <= (family === 4 ? 32 : 128))) return null;
  const list = new BlockList();
  list.addSubnet(addr, bits, family === 4 ? 'ipv4' : 'ipv6');
  return list;
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v).length === 0;
}

/** Does one field value satisfy the op against the rule's value (before invert)? */
export function checkOp(op: ConditionOp, field: unknown, value: unknown): boolean {
  switch (op) {
    case 'is-empty':
      return isEmpty(field);
    case 'eq':
      return compare(field, value) === 0;
    case 'ne':
      return compare(field, value) !== 0;
    case 'lt': { const c = compare(field, value); return c !== null && c < 0; }
    case 'gt': { const c = compare(field, value); return c !== null && c > 0; }
    case 'le': { const c = compare(field, value); return c !== null && c <= 0; }
    case 'ge': { const c = compare(field, value); return c !== null && c >= 0; }
    case 'in-net': {
      // A field that is not an address (an interface without IPv4, say) is simply not in the network.
      const net = parseNetwork(value);
      if (!net || typeof field !== 'string') return false;
      const fam = isIP(field);
      return fam !== 0 && net.check(field, fam === 4 ? 'ipv4' : 'ipv6');
    }
    case 'matches':
      // inspector's `matches` is anchored at both ends (re.match with a trailing $).
      return typeof field === 'string' && anchored(String(value)).test(field);
    case 'contains':
      return typeof field === 'string' && compileRegex(String(value)).test(field);
  }
}

function anchored(source: string): RegExp {
  const flags = /^\(\?[aimsux]+\)/.exec(source)?.[0] ?? '';
  return compileRegex(`${flags}^(?:${source.slice(flags.length)})$`);
}
