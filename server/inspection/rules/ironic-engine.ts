import type { NodeRecord } from '../../nodes/model.js';
import { MASK } from '../../security/secrets.js';
import { inventoryOf } from '../derive.js';
import { checkAttributePath } from './attributes.js';
import { ConditionError, checkIronicCondition } from './ironic-checks.js';
import { FORMATTED_ARGS, IRONIC_ACTIONS, IRONIC_CONDITIONS, namedArgs, splitOp } from './ironic-ops.js';
import { DRIVER_ALIASES } from '../../nodes/validate.js';
import { TemplateMiss, pyStr, renderValue, type TemplateContext } from './ironic-template.js';
import type { IronicRule, IronicStep, RuleChange, RuleLog } from './types.js';

/**
 * Evaluation of one Ironic-format rule: its conditions over `inventory`,
 * `plugin_data` and the node, then its actions as osp node changes (the same
 * changes inspector v1 actions make, so the engine applies both alike).
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A node attribute value as osp stores it: text, or null to remove. */
export function scalar(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/**
 * `inventory` and `plugin_data` for templates. Ironic's node inventory answer
 * carries plugin_data beside the inventory; inspector's introspection data
 * has its processed keys (cpus, memory_mb, …) at the top, which is what
 * Ironic's plugin data holds, so those are read as plugin_data too.
 */
export function ironicData(doc: Obj, data: Obj, node: NodeRecord): { inventory: Obj; plugin_data: Obj } {
  const { inventory: _inv, plugin_data: pd, ...processed } = data;
  const plugin: Obj = { ...processed, ...(isObj(pd) ? pd : {}) };
  // Ironic marks discovered machines in plugin data; in osp an inventory for a node still in enroll comes from discovery.
  if (plugin.auto_discovered === undefined) plugin.auto_discovered = node.provisionState === 'enroll';
  return { inventory: inventoryOf(doc), plugin_data: plugin };
}

interface Parsed { name: string; negated: boolean; args: Obj }

function parsed(step: IronicStep, table: typeof IRONIC_ACTIONS): Parsed {
  const s = splitOp(step.op);
  if (typeof s === 'string') throw new ConditionError(s); // refused at import
  return { ...s, args: namedArgs(s.name, table[s.name], step.args).args };
}

/** A loop's items, their own templates rendered first (Ironic formats an item's text a second time). */
function loopItems(step: IronicStep, ctx: TemplateContext): unknown[] | null {
  if (step.loop === undefined) return null;
  const items = Array.isArray(step.loop) ? step.loop : [step.loop];
  return items.length ? items.map((i) => renderValue(i, ctx)) : null;
}

/** In conditions a field that reaches nothing stays as written, as Ironic leaves it; a note says so. */
function renderLenient(v: unknown, ctx: TemplateContext, miss: (field: string) => void): unknown {
  if (Array.isArray(v)) return v.map((x) => renderLenient(x, ctx, miss));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderLenient(x, ctx, miss)]));
  try {
    return renderValue(v, ctx);
  } catch (e) {
    if (!(e instanceof TemplateMiss)) throw e;
    miss(e.field);
    return v;
  }
}

function renderArgs(args: Obj, ctx: TemplateContext, looping: boolean, render: (v: unknown) => unknown): Obj {
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, looping || FORMATTED_ARGS.includes(k) ? render(v) : v]));
}

function conditionHolds(step: IronicStep, ctx: TemplateContext, where: string, rule: string, logs: RuleLog[]): boolean {
  const c = parsed(step, IRONIC_CONDITIONS);
  const once = (item?: unknown) => {
    const looping = item !== undefined;
    const here = looping ? { ...ctx, item } : ctx;
    const args = renderArgs(c.args, here, looping, (v) => renderLenient(v, here, (field) => {
      logs.push({ rule, level: 'warning', message: `${where}: ${field} reaches nothing; compared as written, as Ironic does` });
    }));
    // Ironic compares loop values as text: its rendering turns numbers into strings.
    if (looping && IRONIC_CONDITIONS[c.name].optional.includes('force_strings')) args.force_strings = true;
    return checkIronicCondition(c.name, args) !== c.negated;
  };
  const items = loopItems(step, ctx);
  if (!items) return once();
  const results = items.map((i) => once(i ?? null));
  switch (step.multiple ?? 'any') {
    case 'all': return results.every(Boolean);
    case 'first': return results[0];
    case 'last': return results[results.length - 1];
    default: return results.some(Boolean);
  }
}

const attributePath = (p: unknown) => checkAttributePath(p, undefined, '', []) ?? String(p);

function changesOf(rule: IronicRule, step: IronicStep, ctx: TemplateContext, logs: RuleLog[]): { changes: RuleChange[]; failure?: string } {
  const a = parsed(step, IRONIC_ACTIONS);
  const changes: RuleChange[] = [];
  const base = { rule: rule.uuid, ...(rule.sensitive ? { sensitive: true } : {}) };
  const items = loopItems(step, ctx);
  for (const item of items ?? [undefined]) {
    const looping = item !== undefined;
    const here = looping ? { ...ctx, item } : ctx;
    const v = renderArgs(a.args, here, looping, (x) => renderValue(x, here));
    switch (a.name) {
      case 'fail':
        return { changes, failure: pyStr(v.msg) };
      case 'log':
        logs.push({ rule: rule.uuid, level: String(v.level ?? 'info').toLowerCase() as RuleLog['level'], message: rule.sensitive ? MASK : pyStr(v.msg) });
        break;
      case 'set-attribute': {
        const path = attributePath(v.path);
        const value = path === '/driver' && typeof v.value === 'string' ? (DRIVER_ALIASES[v.value.toLowerCase()] ?? v.value) : v.value;
        changes.push({ ...base, kind: 'set-attribute', path, value: scalar(value) });
        break;
      }
      case 'del-attribute':
        changes.push({ ...base, kind: 'set-attribute', path: attributePath(v.path), value: null });
        break;
      case 'extend-attribute':
        changes.push({ ...base, kind: 'extend-attribute', path: '/ports', value: scalar(v.value) ?? '', unique: v.unique === true });
        break;
      case 'set-capability':
        changes.push({ ...base, kind: 'set-capability', name: String(v.name), value: scalar(v.value) });
        break;
      case 'unset-capability':
        changes.push({ ...base, kind: 'set-capability', name: String(v.name), value: null });
        break;
      case 'add-trait':
      case 'remove-trait':
        changes.push({ ...base, kind: a.name, name: String(v.name) });
        break;
    }
  }
  return { changes };
}

export interface IronicOutcome {
  matched: boolean;
  changes: RuleChange[];
  failure?: string;
}

/** One rule over the context; a failure is a `fail` action, or a condition or template Ironic could not evaluate either. */
export function evaluateIronicRule(rule: IronicRule, ctx: TemplateContext, logs: RuleLog[]): IronicOutcome {
  for (const [i, c] of rule.conditions.entries()) {
    const where = `rule ${rule.uuid} conditions[${i}]`;
    try {
      if (!conditionHolds(c, ctx, where, rule.uuid, logs)) return { matched: false, changes: [] };
    } catch (e) {
      if (e instanceof ConditionError || e instanceof TemplateMiss) return { matched: false, changes: [], failure: `${where}: ${e.message}` };
      throw e;
    }
  }
  const changes: RuleChange[] = [];
  for (const [i, a] of rule.actions.entries()) {
    try {
      const r = changesOf(rule, a, ctx, logs);
      changes.push(...r.changes);
      if (r.failure) return { matched: true, changes, failure: r.failure };
    } catch (e) {
      if (e instanceof TemplateMiss) return { matched: true, changes, failure: `rule ${rule.uuid} actions[${i}]: ${e.message}` };
      throw e;
    }
  }
  return { matched: true, changes };
}
