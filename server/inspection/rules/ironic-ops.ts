/**
 * The conditions and actions of Ironic's inspection-rule format (2025.1
 * "Epoxy" and later), with the argument names Ironic's plugins take, so a
 * positional `args` list can be read the way Ironic reads it.
 */

export interface Signature {
  required: string[];
  optional: string[];
}

const sig = (required: string[], optional: string[] = []): Signature => ({ required, optional });

/** Ironic's condition operators; any of them may be negated with a leading `!`. */
export const IRONIC_CONDITIONS: Record<string, Signature> = {
  eq: sig(['values'], ['force_strings']),
  lt: sig(['values'], ['force_strings']),
  gt: sig(['values'], ['force_strings']),
  'is-empty': sig(['value']),
  'in-net': sig(['address', 'subnet']),
  matches: sig(['value', 'regex']),
  contains: sig(['value', 'regex']),
  'one-of': sig(['value'], ['values']),
  'is-none': sig(['value']),
  'is-true': sig(['value']),
  'is-false': sig(['value']),
};

/** Inspector v1 operators Ironic dropped, and how to write them now. */
export const DROPPED_CONDITIONS: Record<string, string> = { ne: '!eq', le: '!gt', ge: '!lt' };

export const IRONIC_ACTIONS: Record<string, Signature> = {
  fail: sig(['msg']),
  log: sig(['msg'], ['level']),
  'set-attribute': sig(['path', 'value']),
  'extend-attribute': sig(['path', 'value'], ['unique']),
  'del-attribute': sig(['path']),
  'set-capability': sig(['name', 'value']),
  'unset-capability': sig(['name']),
  'add-trait': sig(['name']),
  'remove-trait': sig(['name']),
};

/** Ironic actions osp cannot carry out, and why. */
export const REFUSED_ACTIONS: Record<string, string> = {
  'set-plugin-data': 'osp keeps the inventory as the machine sent it and no plugin data beside it',
  'extend-plugin-data': 'osp keeps the inventory as the machine sent it and no plugin data beside it',
  'unset-plugin-data': 'osp keeps the inventory as the machine sent it and no plugin data beside it',
  'set-port-attribute': 'osp ports are MAC addresses with no attributes of their own',
  'extend-port-attribute': 'osp ports are MAC addresses with no attributes of their own',
  'del-port-attribute': 'osp ports are MAC addresses with no attributes of their own',
  'api-call': 'osp rules change only the node, so that a preview can show everything a rule does',
};

/** Arguments Ironic renders as templates (outside a loop; inside one, every argument is rendered). */
export const FORMATTED_ARGS = ['value', 'values', 'msg', 'address', 'subnet'];

export const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const;

export const LOOP_MODES = ['any', 'all', 'first', 'last'] as const;

/** Where an action's values sit, for masking a sensitive rule's actions. */
export const VALUE_ARGS: Record<string, string[]> = {
  'set-attribute': ['value'], 'extend-attribute': ['value'], 'set-capability': ['value'], log: ['msg'],
};

/** `!eq` → eq, negated; an error text for `!!eq`. */
export function splitOp(op: string): { name: string; negated: boolean } | string {
  const t = op.trim();
  if ((t.match(/!/g) ?? []).length > 1) return 'at most one leading ! (to negate a condition)';
  return { name: t.replace(/^!\s*/, '').trim(), negated: t.startsWith('!') };
}

/**
 * `args` as a mapping. A list is positional, in the plugin's argument
 * order, except for eq/lt/gt: Ironic 2025.1 took their values spread out
 * (`[a, b]`), later releases one `values` list (`[[a, b]]`); both read the same.
 */
export function namedArgs(name: string, s: Signature, args: unknown[] | Record<string, unknown>): { args: Record<string, unknown>; extra: number } {
  if (!Array.isArray(args)) return { args: { ...args }, extra: 0 };
  if (s.required[0] === 'values') {
    const listed = Array.isArray(args[0]) && (args.length === 1 || (args.length === 2 && typeof args[1] === 'boolean'));
    if (listed) return { args: args.length === 2 ? { values: args[0], force_strings: args[1] } : { values: args[0] }, extra: 0 };
    return { args: { values: [...args] }, extra: 0 };
  }
  const names = [...s.required, ...s.optional];
  const out: Record<string, unknown> = {};
  args.slice(0, names.length).forEach((v, i) => (out[names[i]] = v));
  return { args: out, extra: Math.max(0, args.length - names.length) };
}
