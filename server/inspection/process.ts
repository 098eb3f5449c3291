import type { Logger } from '../../common/logging.js';
import { pickProperties, propertiesBySnakeName } from '../../common/node-properties.js';
import type { NodeRecord } from '../nodes/model.js';
import type { PatchOp } from '../nodes/patch.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import { deriveProperties, type DerivedProperties } from './derive.js';
import { HintError } from './root-device.js';
import { applyRuleChanges, describeLog, evaluateRules } from './rules/engine.js';
import type { Rule, RuleChange, RuleLog } from './rules/types.js';

/** What processInventory needs; NodeRegistry and RuleStore fit as they are. */
export interface ProcessDeps {
  db: Database;
  registry: {
    get(id: string): Promise<NodeRecord>;
    update(id: string, ops: PatchOp[], actor: string): Promise<NodeRecord>;
  };
  rules: { list(): Promise<Rule[]> };
  log: Logger;
}

export interface ProcessResult {
  properties: Pick<DerivedProperties, 'cpus' | 'memoryMb' | 'localGb' | 'cpuArch'>;
  /** MACs added as ports now (ones the node already had are not repeated). */
  ports: string[];
  matchedRules: string[];
  changes: RuleChange[];
  /** Set when inspection must fail: a rule's `fail` action, bad root device hints, or changes the node refuses. */
  failure?: string;
  node: NodeRecord;
}

const ACTOR = 'inspection';
const LOG_CALL: Record<RuleLog['level'], 'debug' | 'info' | 'warn' | 'error'> = { debug: 'debug', info: 'info', warning: 'warn', error: 'error', critical: 'error' };

function propertyOps(d: DerivedProperties): PatchOp[] {
  return Object.entries(propertiesBySnakeName(d)).map(([name, v]) => ({ op: 'add', path: `/properties/${name}`, value: String(v) }));
}

/**
 * After an inventory arrives: derive properties, add ports for the PXE MACs,
 * run the stored rules, and apply all of it to the node in one update (so a
 * failure leaves the node as it was), then record an `inspection` event.
 * Does not change the provision state: that is the inspection flow's.
 */
export async function processInventory(deps: ProcessDeps, nodeUuid: string, inventory: Record<string, unknown>): Promise<ProcessResult> {
  const node = await deps.registry.get(nodeUuid);
  const fail = async (failure: string, partial: Partial<ProcessResult> = {}, ruleLogs: string[] = []): Promise<ProcessResult> => {
    await nodeStore.appendEvent(deps.db, {
      nodeUuid: node.uuid, type: 'inspection', actor: ACTOR, message: `inspection processing failed: ${failure}`,
      data: { matchedRules: partial.matchedRules ?? [], ...(ruleLogs.length ? { ruleLogs } : {}) },
    });
    deps.log.warn({ node: node.name, failure }, 'inspection processing failed');
    return { properties: {}, ports: [], matchedRules: [], changes: [], ...partial, failure, node };
  };
  let derived: DerivedProperties;
  try {
    derived = deriveProperties(inventory, node.rootDevice);
  } catch (e) {
    if (e instanceof HintError) return fail(e.message);
    throw e;
  }
  const properties = pickProperties(derived);
  // A MAC another node already owns stays with that node; inspection does not steal ports.
  const owners = await nodeStore.portOwners(deps.db, derived.pxeMacs);
  const ports = derived.pxeMacs.filter((m) => !node.ports.includes(m) && (owners.get(m) ?? node.uuid) === node.uuid);
  const skipped = derived.pxeMacs.filter((m) => (owners.get(m) ?? node.uuid) !== node.uuid);

  // Rules see the node as it will be with the derived properties and ports.
  const withDerived: NodeRecord = {
    ...node, ports: [...node.ports, ...ports],
    properties: { ...node.properties, ...Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== undefined)) },
  };
  const evaluation = evaluateRules(await deps.rules.list(), { inventory, node: withDerived });
  // Ironic's log action writes to the server log; sensitive rules' messages arrive masked.
  for (const l of evaluation.logs ?? []) deps.log[LOG_CALL[l.level]]({ node: node.name, rule: l.rule }, l.message);
  const ruleLogs = (evaluation.logs ?? []).map(describeLog);
  if (evaluation.failure) return fail(evaluation.failure, { properties, matchedRules: evaluation.matched, changes: evaluation.changes }, ruleLogs);

  const ops = [...propertyOps(derived), ...(ports.length ? [{ op: 'add', path: '/ports', value: ports.join(',') }] : []), ...applyRuleChanges(evaluation.changes)];
  let updated = node;
  if (ops.length) {
    try {
      updated = await deps.registry.update(node.uuid, ops, ACTOR);
    } catch (e) {
      return fail(`the node refused the inspection results: ${(e as Error).message}`, { properties, matchedRules: evaluation.matched, changes: evaluation.changes }, ruleLogs);
    }
  }
  const summary = [
    `cpus=${properties.cpus ?? '?'}`, `memory_mb=${properties.memoryMb ?? '?'}`, `local_gb=${properties.localGb ?? '?'}`, `cpu_arch=${properties.cpuArch ?? '?'}`,
    ports.length ? `ports added ${ports.join(', ')}` : 'no new ports',
    `${evaluation.matched.length} rule(s) matched`,
  ].join('; ');
  await nodeStore.appendEvent(deps.db, {
    nodeUuid: node.uuid, type: 'inspection', actor: ACTOR, message: `inspection processed: ${summary}`,
    data: { properties, ports, skippedPorts: skipped, matchedRules: evaluation.matched, notes: derived.notes, ...(ruleLogs.length ? { ruleLogs } : {}) },
  });
  deps.log.info({ node: node.name, matched: evaluation.matched.length, ports: ports.length }, 'inventory processed');
  return { properties, ports, matchedRules: evaluation.matched, changes: evaluation.changes, node: updated };
}
