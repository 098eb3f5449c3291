import { randomUUID } from 'node:crypto';
import { MASK, isSecretKey } from '../../security/secrets.js';
import { CAP_TOKEN } from '../../nodes/validate.js';
import { TRAIT, UUID_RE, checkAttributePath, isObject, problem, type Problems } from './attributes.js';
import {
  DROPPED_CONDITIONS, FORMATTED_ARGS, IRONIC_ACTIONS, IRONIC_CONDITIONS, LOG_LEVELS, LOOP_MODES, REFUSED_ACTIONS, VALUE_ARGS,
  namedArgs, splitOp, type Signature,
} from './ironic-ops.js';
import { TemplateMiss, checkTemplate, renderValue, type TemplateRoot } from './ironic-template.js';
import { compileRegex, parseNetwork } from './operators.js';
import type { IronicRule, IronicStep } from './types.js';

/**
 * Ironic's newer inspection-rule format (`{op, args}` steps, priority, phase,
 * sensitive), checked at import against what osp can carry out, all or
 * nothing in the same one-line-per-problem style as inspector v1 rules.
 */

// Ironic's built-in rules file allows ids such as "rule-dell-bmc-setup"; the API wants UUIDs.
const ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/i;
const RULE_KEYS = ['uuid', 'description', 'priority', 'phase', 'sensitive', 'conditions', 'actions'];
// What Ironic's API adds to a rule it returns; accepted so a saved answer imports as is.
const RESPONSE_KEYS = ['created_at', 'updated_at', 'links'];
const ROOTS: TemplateRoot[] = ['node', 'inventory', 'plugin_data'];

/** Does a rule object use the newer format (its rule keys, or `{op, args}` steps)? */
export function looksIronic(raw: Record<string, unknown>): boolean {
  if (['phase', 'priority', 'sensitive'].some((k) => k in raw)) return true;
  const steps = (v: unknown) => (Array.isArray(v) ? v.filter(isObject) : []);
  return steps(raw.conditions).some((c) => 'args' in c) || steps(raw.actions).some((a) => 'op' in a && !('action' in a));
}

/** YAML reads an unquoted `{inventory.memory}` as a one-key mapping whose value is null. */
function unquotedTemplate(v: unknown, where: string): { where: string; value: unknown; text: string } | null {
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) {
      const r = unquotedTemplate(x, `${where}[${i}]`);
      if (r) return r;
    }
    return null;
  }
  if (!isObject(v)) return null;
  const keys = Object.keys(v);
  if (keys.length === 1 && v[keys[0]] === null && /^(node|inventory|plugin_data|item)([.[]|$)/.test(keys[0])) return { where, value: v, text: `{${keys[0]}}` };
  for (const [k, x] of Object.entries(v)) {
    const r = unquotedTemplate(x, `${where}.${k}`);
    if (r) return r;
  }
  return null;
}

function eachString(v: unknown, where: string, fn: (s: string, where: string) => void): void {
  if (typeof v === 'string') fn(v, where);
  else if (Array.isArray(v)) v.forEach((x, i) => eachString(x, `${where}[${i}]`, fn));
  else if (isObject(v)) for (const [k, x] of Object.entries(v)) eachString(x, `${where}.${k}`, fn);
}

function checkTemplates(v: unknown, where: string, roots: TemplateRoot[], out: Problems): void {
  eachString(v, where, (s, w) => {
    const t = checkTemplate(s, roots);
    if (t) problem(out, w, s, t);
  });
}

const dynamic = (v: unknown) => typeof v === 'string' && v.includes('{');

/** The arguments one loop iteration passes: `{item…}` fields filled in, other fields left for evaluation. */
function withItem(args: Record<string, unknown>, item: unknown, where: string, out: Problems): Record<string, unknown> {
  const fill = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(fill);
    if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    if (typeof v !== 'string') return v;
    try {
      return renderValue(v, { item });
    } catch (e) {
      if (e instanceof TemplateMiss && e.field.startsWith('{item')) problem(out, where, item, `an item that has what ${e.field} reads`);
      return v;
    }
  };
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, fill(v)]));
}

function checkConditionArgs(name: string, a: Record<string, unknown>, where: string, out: Problems): void {
  if (['eq', 'lt', 'gt'].includes(name) && !Array.isArray(a.values) && !dynamic(a.values)) problem(out, `${where}.values`, a.values, `a list of the values ${name} compares`);
  if ('force_strings' in a && typeof a.force_strings !== 'boolean') problem(out, `${where}.force_strings`, a.force_strings, 'true or false');
  if (name === 'in-net' && !dynamic(a.subnet) && !parseNetwork(a.subnet)) problem(out, `${where}.subnet`, a.subnet, 'a network in CIDR form such as 10.0.0.0/8 or fd00::/64');
  if ((name === 'matches' || name === 'contains')) {
    if (typeof a.regex !== 'string') problem(out, `${where}.regex`, a.regex, 'a regular expression string');
    else {
      try {
        compileRegex(a.regex);
      } catch (e) {
        problem(out, `${where}.regex`, a.regex, `a valid regular expression (${(e as Error).message})`);
      }
    }
  }
  if (name === 'one-of' && 'values' in a && !Array.isArray(a.values) && !dynamic(a.values)) problem(out, `${where}.values`, a.values, 'a list of the values to look for');
}

function checkActionArgs(name: string, a: Record<string, unknown>, where: string, out: Problems): void {
  const literal = (k: string, what: string) => {
    if (typeof a[k] !== 'string' || dynamic(a[k])) problem(out, `${where}.${k}`, a[k], `${what}, written out (or given by a loop item)`);
    return typeof a[k] === 'string' && !dynamic(a[k]);
  };
  switch (name) {
    case 'set-attribute': {
      if (!literal('path', 'a node attribute path such as /driver_info/ipmi_username')) return;
      checkAttributePath(a.path, a.value, where, out);
      return;
    }
    case 'del-attribute': {
      if (!literal('path', 'a node attribute path such as /driver_info/ipmi_username')) return;
      const norm = checkAttributePath(a.path, undefined, where, out);
      if (norm === '/name' || norm === '/driver') problem(out, `${where}.path`, a.path, 'an attribute that can be removed (a node always has a name and a driver)');
      return;
    }
    case 'extend-attribute':
      if (typeof a.path !== 'string' || a.path.replace(/^\//, '') !== 'ports') problem(out, `${where}.path`, a.path, '/ports (the only list attribute of an osp node)');
      if (typeof a.value !== 'string') problem(out, `${where}.value`, a.value, 'a MAC address or a template such as {inventory[interfaces][0][mac_address]}');
      if ('unique' in a && typeof a.unique !== 'boolean') problem(out, `${where}.unique`, a.unique, 'true or false');
      return;
    case 'set-capability':
    case 'unset-capability':
      if (literal('name', 'a capability name') && !CAP_TOKEN.test(a.name as string)) problem(out, `${where}.name`, a.name, 'a capability name of letters, digits, _ . -');
      if (name === 'unset-capability') return;
      if (a.value === null) problem(out, `${where}.value`, a.value, 'a value (unset-capability removes a capability)');
      else if (!['string', 'number', 'boolean'].includes(typeof a.value)) problem(out, `${where}.value`, a.value, 'a string, number or boolean');
      else if (typeof a.value === 'string' && !dynamic(a.value) && !CAP_TOKEN.test(a.value)) problem(out, `${where}.value`, a.value, 'a capability value of letters, digits, _ . -');
      return;
    case 'add-trait':
    case 'remove-trait':
      if (literal('name', 'a trait') && !TRAIT.test(a.name as string)) problem(out, `${where}.name`, a.name, 'a trait such as CUSTOM_GPU (upper-case letters, digits, _)');
      return;
    case 'fail':
      if (typeof a.msg !== 'string' || !a.msg) problem(out, `${where}.msg`, a.msg, 'the failure message');
      return;
    case 'log':
      if (typeof a.msg !== 'string') problem(out, `${where}.msg`, a.msg, 'the message to log');
      if ('level' in a && !(typeof a.level === 'string' && (LOG_LEVELS as readonly string[]).includes(a.level.toLowerCase()))) problem(out, `${where}.level`, a.level, `one of ${LOG_LEVELS.join(', ')}`);
  }
}

function opProblem(kind: 'condition' | 'action', name: string): string {
  const table = kind === 'condition' ? IRONIC_CONDITIONS : IRONIC_ACTIONS;
  const known = `one of ${Object.keys(table).join(', ')}${kind === 'condition' ? ' (! before one negates it)' : ''}`;
  if (kind === 'action' && REFUSED_ACTIONS[name]) return `${known}; osp does not carry out ${name}: ${REFUSED_ACTIONS[name]}`;
  if (kind === 'condition' && DROPPED_CONDITIONS[name]) return `${known}; Ironic's format has no ${name}: write ${DROPPED_CONDITIONS[name]}`;
  return known;
}

function parseStep(raw: unknown, where: string, kind: 'condition' | 'action', out: Problems): IronicStep | null {
  if (!isObject(raw)) return problem(out, where, raw, 'an object with op and args'), null;
  const before = out.length;
  const allowed = kind === 'condition' ? ['op', 'args', 'loop', 'multiple'] : ['op', 'args', 'loop'];
  const extra = Object.keys(raw).filter((k) => !allowed.includes(k));
  if (extra.length) problem(out, `${where}.${extra[0]}`, raw[extra[0]], `only ${allowed.join(', ')}`);
  const split = typeof raw.op === 'string' ? splitOp(raw.op) : opProblem(kind, '');
  if (typeof split === 'string') return problem(out, `${where}.op`, raw.op, split), null;
  if (kind === 'action' && split.negated) return problem(out, `${where}.op`, raw.op, 'an action name (only conditions are negated with !)'), null;
  const s: Signature | undefined = (kind === 'condition' ? IRONIC_CONDITIONS : IRONIC_ACTIONS)[split.name];
  if (!s) return problem(out, `${where}.op`, raw.op, opProblem(kind, split.name)), null;
  if (!Array.isArray(raw.args) && !isObject(raw.args)) return problem(out, `${where}.args`, raw.args, 'a list of arguments (positional) or a mapping (by name)'), null;
  const slip = unquotedTemplate(raw.args, `${where}.args`) ?? unquotedTemplate(raw.loop, `${where}.loop`);
  if (slip) return problem(out, slip.where, slip.value, `a string: YAML read the unquoted template ${slip.text} as a mapping; quote it: "${slip.text}"`), null;

  const names = [...s.required, ...s.optional];
  const { args, extra: surplus } = namedArgs(split.name, s, raw.args);
  if (surplus) problem(out, `${where}.args`, raw.args, `at most ${names.length} argument(s) for ${split.name} (${names.join(', ')})`);
  for (const k of s.required) if (!(k in args)) problem(out, `${where}.args.${k}`, undefined, `the ${k} argument of ${split.name}`);
  for (const k of Object.keys(args)) if (!names.includes(k)) problem(out, `${where}.args.${k}`, args[k], `only ${names.join(', ')} for ${split.name}`);
  let items: unknown[] | null = null;
  if (raw.loop !== undefined) {
    if (Array.isArray(raw.loop) && raw.loop.length) items = raw.loop;
    else if (isObject(raw.loop)) items = [raw.loop];
    else problem(out, `${where}.loop`, raw.loop, 'a non-empty list of items, or a mapping (one item)');
  }
  if (raw.multiple !== undefined && !(LOOP_MODES as readonly unknown[]).includes(raw.multiple)) problem(out, `${where}.multiple`, raw.multiple, `one of ${LOOP_MODES.join(', ')}`);
  if (out.length > before) return null;

  // Inside a loop Ironic renders every argument, outside it only the value-like ones.
  for (const [k, v] of Object.entries(args)) if (items || FORMATTED_ARGS.includes(k)) checkTemplates(v, `${where}.args.${k}`, items ? [...ROOTS, 'item'] : ROOTS, out);
  if (items) checkTemplates(raw.loop, `${where}.loop`, ROOTS, out);
  if (out.length > before) return null;
  const runs = items ? items.map((item, j) => ({ a: withItem(args, item, `${where}.loop[${j}]`, out), at: `${where}.loop[${j}]` })) : [{ a: args, at: `${where}.args` }];
  for (const r of runs) (kind === 'condition' ? checkConditionArgs : checkActionArgs)(split.name, r.a, r.at, out);
  if (out.length > before) return null;
  return {
    op: raw.op as string, args: raw.args,
    ...(raw.loop !== undefined ? { loop: raw.loop as IronicStep['loop'] } : {}),
    ...(raw.multiple !== undefined ? { multiple: raw.multiple as IronicStep['multiple'] } : {}),
  };
}

/** One rule in Ironic's format; every problem appended to `out`. */
export function parseIronicRule(raw: Record<string, unknown>, where: string, out: Problems): IronicRule | null {
  const before = out.length;
  if ('scope' in raw) problem(out, `${where}.scope`, raw.scope, 'no scope in an Ironic-format rule (Ironic dropped it; write an inspector v1 rule to scope one)');
  const extra = Object.keys(raw).filter((k) => ![...RULE_KEYS, ...RESPONSE_KEYS, 'scope'].includes(k));
  if (extra.length) problem(out, `${where}.${extra[0]}`, raw[extra[0]], `only ${RULE_KEYS.join(', ')} in an Ironic-format rule`);
  if (raw.uuid !== undefined && raw.uuid !== null && (typeof raw.uuid !== 'string' || !(UUID_RE.test(raw.uuid) || ID_RE.test(raw.uuid)))) {
    problem(out, `${where}.uuid`, raw.uuid, 'a UUID or an id of letters, digits, . _ - (at most 64), or leave it out to have one generated');
  }
  if (raw.description !== undefined && raw.description !== null && (typeof raw.description !== 'string' || raw.description.length > 255)) problem(out, `${where}.description`, raw.description, 'a string of at most 255 characters');
  if (raw.priority !== undefined && !(Number.isInteger(raw.priority) && (raw.priority as number) >= 0 && (raw.priority as number) <= 9999)) problem(out, `${where}.priority`, raw.priority, 'a whole number from 0 to 9999 (higher runs first)');
  if (raw.phase !== undefined && raw.phase !== null && raw.phase !== 'main') problem(out, `${where}.phase`, raw.phase, 'main (the only inspection phase Ironic has; osp runs rules once, when the inventory arrives)');
  if (raw.sensitive !== undefined && raw.sensitive !== null && typeof raw.sensitive !== 'boolean') problem(out, `${where}.sensitive`, raw.sensitive, 'true or false');
  const conds = raw.conditions ?? [];
  if (!Array.isArray(conds)) problem(out, `${where}.conditions`, conds, 'a list of conditions (empty matches every node)');
  if (!Array.isArray(raw.actions) || raw.actions.length === 0) problem(out, `${where}.actions`, raw.actions, 'a non-empty list of actions');
  const conditions = Array.isArray(conds) ? conds.map((c, i) => parseStep(c, `${where}.conditions[${i}]`, 'condition', out)) : [];
  const actions = Array.isArray(raw.actions) ? raw.actions.map((a, i) => parseStep(a, `${where}.actions[${i}]`, 'action', out)) : [];
  if (out.length > before) return null;
  return {
    format: 'ironic', uuid: ((raw.uuid as string | null | undefined) ?? randomUUID()).toLowerCase(), description: (raw.description as string | null | undefined) ?? '',
    priority: (raw.priority as number | undefined) ?? 0, phase: 'main', sensitive: (raw.sensitive as boolean | null | undefined) ?? false,
    conditions: conditions as IronicStep[], actions: actions as IronicStep[],
  };
}

/** The rule as Ironic shows it: its own keys, nothing of osp's. */
export function ironicJson(r: IronicRule): Record<string, unknown> {
  return { uuid: r.uuid, description: r.description, priority: r.priority, phase: r.phase, sensitive: r.sensitive, conditions: r.conditions, actions: r.actions };
}

const mask = (v: unknown) => (v === null || v === undefined || v === '' ? v : MASK);
const secretPath = (p: unknown) => typeof p === 'string' && isSecretKey(p.split(/[/.]/).pop() ?? '');

function maskStep(a: IronicStep, sensitive: boolean): IronicStep {
  const name = a.op.trim();
  const s = IRONIC_ACTIONS[name];
  if (!s) return a;
  const names = [...s.required, ...s.optional];
  const named = namedArgs(name, s, a.args).args;
  const hidden = sensitive ? (VALUE_ARGS[name] ?? []) : name === 'set-attribute' && secretPath(named.path) ? ['value'] : [];
  const args = Array.isArray(a.args) ? a.args.map((v, i) => (hidden.includes(names[i]) ? mask(v) : v)) : Object.fromEntries(Object.entries(a.args).map(([k, v]) => [k, hidden.includes(k) ? mask(v) : v]));
  if (a.loop === undefined) return { ...a, args };
  // A loop item carries the values its iteration sets (Ironic's own example sets ipmi_password this way).
  const maskItem = (item: unknown) => {
    if (!isObject(item)) return sensitive ? mask(item) : item;
    return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, (sensitive ? !['path', 'name'].includes(k) : k === 'value' && secretPath(item.path)) ? mask(v) : v]));
  };
  return { ...a, args, loop: Array.isArray(a.loop) ? a.loop.map(maskItem) : (maskItem(a.loop) as Record<string, unknown>) };
}

/** A copy safe to show: a sensitive rule's action values, and any secret attribute's value, replaced by the mask. */
export function maskIronicRule(r: IronicRule): IronicRule {
  return { ...r, actions: r.actions.map((a) => maskStep(a, r.sensitive)) };
}

/** Does the rule hold values to seal at rest (what maskIronicRule would hide)? */
export function hasSecretValues(r: IronicRule): boolean {
  return JSON.stringify(maskIronicRule(r).actions) !== JSON.stringify(r.actions);
}
