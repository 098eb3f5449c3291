import { isIP } from 'node:net';
import { pyStr } from './ironic-template.js';
import { compileRegex, parseNetwork } from './operators.js';

/**
 * Ironic's condition operators over rendered arguments, with Python's
 * semantics: 16 == "16" is false, ordering a string against a number is an
 * error (which fails inspection in Ironic, and here), `matches` is re.match
 * with a `$` appended.
 */

/** A condition that cannot be evaluated; inspection fails with this message. */
export class ConditionError extends Error {}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// Python's bool is an int: True == 1 and True < 2.
function num(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

export function pyEq(a: unknown, b: unknown): boolean {
  const na = num(a);
  const nb = num(b);
  if (na !== null && nb !== null) return na === nb;
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => pyEq(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && pyEq(a[k], b[k]));
  }
  return (a ?? null) === (b ?? null);
}

function pyLt(a: unknown, b: unknown): boolean {
  const na = num(a);
  const nb = num(b);
  if (na !== null && nb !== null) return na < nb;
  if (typeof a === 'string' && typeof b === 'string') return a < b;
  throw new ConditionError(`cannot order ${JSON.stringify(a ?? null)} and ${JSON.stringify(b ?? null)} (a number and a string, or values without an order; force_strings compares them as text)`);
}

function valuesOf(op: string, args: Record<string, unknown>): unknown[] {
  if (!Array.isArray(args.values)) throw new ConditionError(`${op}: values is ${JSON.stringify(args.values)}, expected a list`);
  return args.force_strings === true ? args.values.map(pyStr) : args.values;
}

function chain(values: unknown[], holds: (a: unknown, b: unknown) => boolean): boolean {
  for (let i = 0; i + 1 < values.length; i++) if (!holds(values[i], values[i + 1])) return false;
  return true;
}

function regex(source: unknown, anchored: boolean): RegExp {
  if (typeof source !== 'string') throw new ConditionError(`regex is ${JSON.stringify(source)}, expected a string`);
  try {
    if (!anchored) return compileRegex(source);
    const flags = /^\(\?[aimsux]+\)/.exec(source)?.[0] ?? '';
    const body = source.slice(flags.length);
    return compileRegex(`${flags}^(?:${body}${body.endsWith('$') ? '' : '$'})`);
  } catch (e) {
    throw new ConditionError(`invalid regular expression ${JSON.stringify(source)}: ${(e as Error).message}`);
  }
}

/** Does the condition hold (before any `!`)? Throws ConditionError where Ironic raises. */
export function checkIronicCondition(op: string, a: Record<string, unknown>): boolean {
  switch (op) {
    case 'eq':
      return chain(valuesOf(op, a), pyEq);
    case 'lt':
      return chain(valuesOf(op, a), pyLt);
    case 'gt':
      return chain(valuesOf(op, a), (x, y) => pyLt(y, x));
    case 'is-empty':
      return ['', 'None', '[]', '{}'].includes(pyStr(a.value));
    case 'is-none':
      return pyStr(a.value) === 'None';
    case 'is-true':
      if (typeof a.value === 'boolean') return a.value;
      if (typeof a.value === 'number') return a.value !== 0;
      return typeof a.value === 'string' && ['yes', 'true'].includes(a.value.toLowerCase());
    case 'is-false':
      if (typeof a.value === 'boolean') return !a.value;
      if (typeof a.value === 'number') return a.value === 0;
      if (typeof a.value === 'string') return ['no', 'false'].includes(a.value.toLowerCase());
      return a.value === null || a.value === undefined;
    case 'in-net': {
      const net = parseNetwork(a.subnet);
      if (!net) throw new ConditionError(`in-net: subnet ${JSON.stringify(a.subnet)} is not a network in CIDR form`);
      const fam = typeof a.address === 'string' ? isIP(a.address) : 0;
      if (!fam) throw new ConditionError(`in-net: address ${JSON.stringify(a.address ?? null)} is not an IP address`);
      return net.check(a.address as string, fam === 4 ? 'ipv4' : 'ipv6');
    }
    case 'matches':
      return regex(a.regex, true).test(pyStr(a.value));
    case 'contains':
      return regex(a.regex, false).test(pyStr(a.value));
    case 'one-of': {
      const values = a.values ?? [];
      if (!Array.isArray(values)) throw new ConditionError(`one-of: values is ${JSON.stringify(values)}, expected a list`);
      return values.some((v) => pyEq(a.value, v));
    }
    default:
      throw new ConditionError(`unknown condition ${op}`);
  }
}
