import { propertiesBySnakeName } from '../../../common/node-properties.js';
import type { NodeRecord } from '../../nodes/model.js';
import { applyPatch, type PatchOp } from '../../nodes/patch.js';
import { describeProblem, validateNode } from '../../nodes/validate.js';
import { MASK, isSecretKey } from '../../security/secrets.js';
import { introspectionData } from '../derive.js';
import { parseField, renderTemplate, resolvePath } from './fields.js';
import { evaluateIronicRule, ironicData, scalar } from './ironic-engine.js';
import { checkOp } from './operators.js';
import { isIronicRule, type Condition, type Evaluation, type InspectorRule, type Rule, type RuleChange, type RuleLog } from './types.js';

/**
 * osp nodes have no trait list yet; a trait is kept as the capability
 * `trait.<NAME>=true` so placement-style matching can still read it.
 */
export const TRAIT_CAPABILITY_PREFIX = 'trait.';

export interface RuleInput {
  /** An IPA inventory, or inspector's introspection data (which has `inventory` inside). */
  inventory: Record<string, unknown>;
  node: NodeRecord;
}

/** The node as `node://` paths see it, in Ironic's field names; secrets masked. */
export function nodeView(n: NodeRecord): Record<string, unknown> {
  const info: Record<string, string> = {};
  for (const [k, v] of Object.entries(n.driverInfo)) {
    const shown = isSecretKey(k) && v ? MASK : v;
    info[k] = shown;
    info[`${n.driver}_${k}`] = shown;
  }
  return {
    uuid: n.uuid, name: n.name, driver: n.driver, driver_info: info, ports: n.ports,
    properties: {
      ...propertiesBySnakeName(n.properties),
      capabilities: Object.entries(n.capabilities).map(([k, v]) => `${k}:${v}`).join(','), root_device: n.rootDevice,
    },
    capabilities: n.capabilities, root_device: n.rootDevice, provision_state: n.provisionState, power_state: n.powerState,
    maintenance: n.maintenance, traits: Object.keys(n.capabilities).filter((k) => k.startsWith(TRAIT_CAPABILITY_PREFIX)).map((k) => k.slice(TRAIT_CAPABILITY_PREFIX.length)),
  };
}

function conditionHolds(c: Condition, data: Record<string, unknown>, node: Record<string, unknown>): boolean {
  const ref = parseField(c.field);
  if (typeof ref === 'string') return false; // validated at import; unreachable for stored rules
  let values = resolvePath(ref.scope === 'node' ? node : data, ref.steps);
  if (values.length === 0) {
    // inspector: a missing field fails the condition outright (invert does not
    // apply), except is-empty, for which missing means empty.
    if (c.op !== 'is-empty') return false;
    values = [undefined];
  }
  if (c.multiple === 'first') values = values.slice(0, 1);
  const hit = (v: unknown) => checkOp(c.op, v, c.value) !== c.invert;
  return c.multiple === 'all' ? values.every(hit) : values.some(hit);
}

/** The changes one matched rule makes; templates rendered against the data. */
function changesOf(rule: InspectorRule, data: Record<string, unknown>): { changes: RuleChange[]; failure?: string } {
  const changes: RuleChange[] = [];
  const render = (v: unknown) => (typeof v === 'string' ? renderTemplate(v, { data }) : scalar(v));
  for (const [i, a] of rule.actions.entries()) {
    try {
      switch (a.action) {
        case 'fail':
          return { changes, failure: a.message };
        case 'set-attribute':
          changes.push({ rule: rule.uuid, kind: a.action, path: a.path, value: render(a.value) });
          break;
        case 'set-capability':
          changes.push({ rule: rule.uuid, kind: a.action, name: a.name, value: render(a.value) });
          break;
        case 'extend-attribute':
          changes.push({ rule: rule.uuid, kind: a.action, path: a.path, value: render(a.value) ?? '', unique: a.unique });
          break;
        case 'add-trait':
        case 'remove-trait':
          changes.push({ rule: rule.uuid, kind: a.action, name: a.name });
          break;
      }
    } catch (e) {
      return { changes, failure: `rule ${rule.uuid} actions[${i}]: ${(e as Error).message}` };
    }
  }
  return { changes };
}

/** Changes as node patch operations, for NodeRegistry.update(). */
export function applyRuleChanges(changes: RuleChange[]): PatchOp[] {
  return changes.map((c): PatchOp => {
    switch (c.kind) {
      case 'set-attribute': {
        const whole = c.path === '/name' || c.path === '/driver';
        return c.value === null ? { op: 'remove', path: c.path, value: '' } : { op: whole ? 'replace' : 'add', path: c.path, value: c.value };
      }
      case 'set-capability':
        return c.value === null ? { op: 'remove', path: `/capabilities/${c.name}`, value: '' } : { op: 'add', path: `/capabilities/${c.name}`, value: c.value };
      case 'extend-attribute':
        return { op: 'add', path: c.path, value: c.value };
      case 'add-trait':
        return { op: 'add', path: `/capabilities/${TRAIT_CAPABILITY_PREFIX}${c.name}`, value: 'true' };
      case 'remove-trait':
        return { op: 'remove', path: `/capabilities/${TRAIT_CAPABILITY_PREFIX}${c.name}`, value: '' };
    }
  });
}

function simulate(node: NodeRecord, ops: PatchOp[]): NodeRecord {
  const r = applyPatch(node, ops);
  return { ...node, ...r.input, maintenance: r.maintenance, maintenanceReason: r.maintenanceReason };
}

/**
 * The order rules run in: Ironic's, higher priority first. Inspector v1
 * rules have no priority and count as 0 (Ironic's default), so a store of
 * v1 rules runs in import order as before, Ironic rules with a priority run
 * ahead of them, and equal priorities keep import order.
 */
export function runOrder<T extends Rule>(rules: T[]): T[] {
  const prio = (r: Rule) => (isIronicRule(r) ? r.priority : 0);
  return rules.map((r, i) => ({ r, i })).sort((a, b) => prio(b.r) - prio(a.r) || a.i - b.i).map((x) => x.r);
}

/** A failure text with a sensitive rule's values taken out. */
function hide(text: string, secrets: string[]): string {
  return secrets.reduce((t, s) => t.split(s).join(MASK), text);
}

/**
 * Runs the rules in run order, as inspector and Ironic do: each matched
 * rule's changes are visible to the `node://` conditions (and `{node…}`
 * templates) of the rules after it. Stops at the first `fail`. Pure: the
 * node passed in is not modified.
 */
export function evaluateRules(rules: Rule[], input: RuleInput): Evaluation {
  const data = introspectionData(input.inventory, input.node.rootDevice);
  const ironic = ironicData(input.inventory, data, input.node);
  let node = input.node;
  const matched: string[] = [];
  const changes: RuleChange[] = [];
  const logs: RuleLog[] = [];
  const secrets: string[] = [];
  const done = (failure?: string): Evaluation => ({
    matched, changes, ...(failure !== undefined ? { failure: hide(failure, secrets) } : {}), ...(logs.length ? { logs } : {}),
  });
  for (const rule of runOrder(rules)) {
    let r: { changes: RuleChange[]; failure?: string };
    if (isIronicRule(rule)) {
      const o = evaluateIronicRule(rule, { ...ironic, node: { ...nodeView(node), auto_discovered: ironic.plugin_data.auto_discovered } }, logs);
      if (!o.matched) {
        if (o.failure) return done(o.failure);
        continue;
      }
      r = o;
    } else {
      if (rule.scope && node.capabilities.inspection_scope !== rule.scope) continue;
      const view = nodeView(node);
      if (!rule.conditions.every((c) => conditionHolds(c, data, view))) continue;
      r = changesOf(rule, data);
    }
    matched.push(rule.uuid);
    changes.push(...r.changes);
    for (const c of r.changes) if (c.sensitive && 'value' in c && c.value && c.value.length >= 3) secrets.push(c.value);
    secrets.sort((a, b) => b.length - a.length);
    if (r.failure) return done(r.failure);
    if (r.changes.length === 0) continue;
    try {
      node = simulate(node, applyRuleChanges(r.changes));
    } catch (e) {
      return done(`rule ${rule.uuid}: ${(e as Error).message}`);
    }
  }
  const problems = validateNode(node).map(describeProblem);
  if (problems.length) return done(`the rules' changes would make the node invalid: ${problems.join('; ')}`);
  return done();
}

/** A log line for people: "info: Configured UEFI boot mode" (already masked for sensitive rules). */
export function describeLog(l: RuleLog): string {
  return `${l.level}: ${l.message}`;
}

/** A change as one line for people: "capabilities/profile = compute". */
export function describeChange(c: RuleChange): string {
  switch (c.kind) {
    case 'set-attribute': {
      const key = c.path.split('/').pop() ?? '';
      const v = c.value !== null && (c.sensitive || isSecretKey(key)) ? MASK : c.value;
      return v === null ? `remove ${c.path.slice(1)}` : `set ${c.path.slice(1)} = ${v}`;
    }
    case 'set-capability':
      return c.value === null ? `remove capability ${c.name}` : `set capability ${c.name} = ${c.sensitive ? MASK : c.value}`;
    case 'extend-attribute':
      return `add ${c.sensitive ? MASK : c.value} to ${c.path.slice(1)}`;
    case 'add-trait':
      return `add trait ${c.name}`;
    case 'remove-trait':
      return `remove trait ${c.name}`;
  }
}
