import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { OspError } from '../../../common/errors.js';
import { CAP_TOKEN } from '../../nodes/validate.js';
import { TRAIT, UUID_RE, checkAttributePath, isObject, problem, type Problems } from './attributes.js';
import { checkTemplate, parseField } from './fields.js';
import { looksIronic, parseIronicRule } from './ironic-format.js';
import { compileRegex, parseNetwork } from './operators.js';
import {
  ACTION_NAMES, CONDITION_OPS, MULTIPLE_MODES, type Action, type Condition, type ConditionOp, type InspectorRule, type MultipleMode, type Rule,
} from './types.js';

const TEMPLATE_ROOTS = ['data'];

function parseCondition(raw: unknown, where: string, out: Problems): Condition | null {
  if (!isObject(raw)) return problem(out, where, raw, 'an object with op and field'), null;
  const before = out.length;
  const op = raw.op as ConditionOp;
  if (!CONDITION_OPS.includes(op)) problem(out, `${where}.op`, raw.op, `one of ${CONDITION_OPS.join(', ')}`);
  if (typeof raw.field !== 'string') problem(out, `${where}.field`, raw.field, 'a string such as data://inventory.cpu.count or node://driver_info.address');
  else {
    const f = parseField(raw.field);
    if (typeof f === 'string') problem(out, `${where}.field`, raw.field, f);
  }
  const invert = raw.invert ?? false;
  if (typeof invert !== 'boolean') problem(out, `${where}.invert`, invert, 'true or false');
  const multiple = (raw.multiple ?? 'any') as MultipleMode;
  if (!MULTIPLE_MODES.includes(multiple)) problem(out, `${where}.multiple`, raw.multiple, `one of ${MULTIPLE_MODES.join(', ')}`);
  if (op !== 'is-empty' && CONDITION_OPS.includes(op) && raw.value === undefined) problem(out, `${where}.value`, undefined, `a value to compare with (op ${op})`);
  if (op === 'in-net' && raw.value !== undefined && !parseNetwork(raw.value)) problem(out, `${where}.value`, raw.value, 'a network in CIDR form such as 10.0.0.0/8 or fd00::/64');
  if ((op === 'matches' || op === 'contains') && raw.value !== undefined) {
    if (typeof raw.value !== 'string') problem(out, `${where}.value`, raw.value, 'a regular expression string');
    else {
      try {
        compileRegex(raw.value);
      } catch (e) {
        problem(out, `${where}.value`, raw.value, `a valid regular expression (${(e as Error).message})`);
      }
    }
  }
  const extra = Object.keys(raw).filter((k) => !['op', 'field', 'value', 'invert', 'multiple'].includes(k));
  if (extra.length) problem(out, `${where}.${extra[0]}`, raw[extra[0]], 'only op, field, value, invert, multiple');
  if (out.length > before) return null;
  return { op, field: raw.field as string, value: raw.value, invert: invert as boolean, multiple };
}

function checkTemplated(v: unknown, where: string, out: Problems): void {
  if (typeof v !== 'string') return;
  const t = checkTemplate(v, TEMPLATE_ROOTS);
  if (t) problem(out, where, v, t);
}

function parseAction(raw: unknown, where: string, out: Problems): Action | null {
  if (!isObject(raw)) return problem(out, where, raw, 'an object with action and its arguments'), null;
  const before = out.length;
  const name = raw.action as (typeof ACTION_NAMES)[number];
  switch (name) {
    case 'set-attribute': {
      if (!('value' in raw)) problem(out, `${where}.value`, undefined, 'a value (null removes the attribute)');
      checkTemplated(raw.value, `${where}.value`, out);
      const path = checkAttributePath(raw.path, raw.value, where, out);
      return out.length > before || !path ? null : { action: name, path, value: raw.value };
    }
    case 'extend-attribute': {
      if (typeof raw.path !== 'string' || raw.path.replace(/^\//, '') !== 'ports') {
        problem(out, `${where}.path`, raw.path, '/ports (the only list attribute of an osp node)');
      }
      if (typeof raw.value !== 'string') problem(out, `${where}.value`, raw.value, 'a MAC address or a {data[…]} template');
      checkTemplated(raw.value, `${where}.value`, out);
      if (raw.unique !== undefined && typeof raw.unique !== 'boolean') problem(out, `${where}.unique`, raw.unique, 'true or false');
      return out.length > before ? null : { action: name, path: '/ports', value: raw.value, unique: (raw.unique as boolean | undefined) ?? false };
    }
    case 'set-capability': {
      if (typeof raw.name !== 'string' || !CAP_TOKEN.test(raw.name)) problem(out, `${where}.name`, raw.name, 'a capability name of letters, digits, _ . -');
      if (raw.value !== null && !['string', 'number', 'boolean'].includes(typeof raw.value)) problem(out, `${where}.value`, raw.value, 'a string, number, boolean, or null to remove the capability');
      else if (typeof raw.value === 'string' && !raw.value.includes('{') && !CAP_TOKEN.test(raw.value)) problem(out, `${where}.value`, raw.value, 'a capability value of letters, digits, _ . -');
      checkTemplated(raw.value, `${where}.value`, out);
      return out.length > before ? null : { action: name, name: raw.name as string, value: raw.value };
    }
    case 'add-trait':
    case 'remove-trait':
      if (typeof raw.name !== 'string' || !TRAIT.test(raw.name)) problem(out, `${where}.name`, raw.name, 'a trait such as CUSTOM_GPU (upper-case letters, digits, _)');
      return out.length > before ? null : { action: name, name: raw.name as string };
    case 'fail':
      if (typeof raw.message !== 'string' || !raw.message) problem(out, `${where}.message`, raw.message, 'the failure message');
      return out.length > before ? null : { action: name, message: raw.message as string };
    default:
      problem(out, `${where}.action`, raw.action, `one of ${ACTION_NAMES.join(', ')}`);
      return null;
  }
}

const RULE_KEYS = ['uuid', 'description', 'conditions', 'actions', 'scope', 'links'];

/**
 * One rule, in whichever format it is written (Ironic's when it has the
 * newer format's keys); every problem is appended to `out` with its place
 * in the document.
 */
export function parseRule(raw: unknown, where: string, out: Problems): Rule | null {
  if (!isObject(raw)) return problem(out, where, raw, 'a rule object with conditions and actions'), null;
  if (looksIronic(raw)) return parseIronicRule(raw, where, out);
  return parseInspectorRule(raw, where, out);
}

function parseInspectorRule(raw: Record<string, unknown>, where: string, out: Problems): InspectorRule | null {
  const before = out.length;
  const extra = Object.keys(raw).filter((k) => !RULE_KEYS.includes(k));
  if (extra.length) problem(out, `${where}.${extra[0]}`, raw[extra[0]], `only ${RULE_KEYS.join(', ')}`);
  if (raw.uuid !== undefined && (typeof raw.uuid !== 'string' || !UUID_RE.test(raw.uuid))) problem(out, `${where}.uuid`, raw.uuid, 'a UUID, or leave it out to have one generated');
  if (raw.description !== undefined && typeof raw.description !== 'string') problem(out, `${where}.description`, raw.description, 'a string');
  if (raw.scope !== undefined && raw.scope !== null && typeof raw.scope !== 'string') problem(out, `${where}.scope`, raw.scope, 'a string');
  const conds = raw.conditions ?? [];
  if (!Array.isArray(conds)) problem(out, `${where}.conditions`, conds, 'a list of conditions (empty matches every node)');
  if (!Array.isArray(raw.actions) || raw.actions.length === 0) problem(out, `${where}.actions`, raw.actions, 'a non-empty list of actions');
  const conditions = Array.isArray(conds) ? conds.map((c, i) => parseCondition(c, `${where}.conditions[${i}]`, out)) : [];
  const actions = Array.isArray(raw.actions) ? raw.actions.map((a, i) => parseAction(a, `${where}.actions[${i}]`, out)) : [];
  if (out.length > before) return null;
  return {
    uuid: ((raw.uuid as string | undefined) ?? randomUUID()).toLowerCase(),
    description: (raw.description as string | undefined) ?? '',
    scope: (raw.scope as string | null | undefined) ?? '',
    conditions: conditions as Condition[],
    actions: actions as Action[],
  };
}

/**
 * A rules document: one rule, a list, or inspector's `{"rules": [...]}`
 * listing; JSON or YAML; each rule in inspector v1 or Ironic's format. All or nothing: any problem rejects the document,
 * naming every bad field.
 */
export function parseRuleDocument(text: string, source: string): Rule[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new OspError('RULE_INVALID', `${source}: not JSON or YAML: ${(e as Error).message}`, { source });
  }
  // Listings as inspector (`rules`) and Ironic (`inspection_rules`) return them are accepted too.
  const listing = isObject(doc) ? (doc.rules ?? doc.inspection_rules) : undefined;
  const list = Array.isArray(doc) ? doc : Array.isArray(listing) ? listing : [doc];
  const out: Problems = [];
  if (list.length === 0) out.push({ field: 'rules', description: `${source}: no rules in the document` });
  const rules = list.map((r, i) => parseRule(r, list.length === 1 && !Array.isArray(doc) && !Array.isArray(listing) ? 'rule' : `rules[${i}]`, out));
  const seen = new Map<string, number>();
  rules.forEach((r, i) => {
    if (!r) return;
    if (seen.has(r.uuid)) out.push({ field: `rules[${i}].uuid`, description: `rules[${i}].uuid: ${JSON.stringify(r.uuid)}: expected a uuid not already used by rules[${seen.get(r.uuid)}]` });
    seen.set(r.uuid, i);
  });
  if (out.length) throw new OspError('RULE_INVALID', `${source}: ${out.length} problem(s):\n${out.map((p) => p.description).join('\n')}`, { problems: out, source });
  return rules as Rule[];
}
