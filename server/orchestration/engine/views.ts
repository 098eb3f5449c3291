import { MASK } from '../../security/secrets.js';
import { stackStore, type EventRow, type ResourceRow, type StackRow } from '../../store/stacks.js';
import { maskParameters } from '../hot/parameters.js';
import { PSEUDO_PARAMETERS } from '../hot/template.js';
import type { DeploymentFailure, ResourceDetail, ResourceView, StackDetail, StackEvent, StackOutput, StackSummary } from './contract.js';
import { maskValue } from './sealing.js';
import { allAttributes, heatStatus, type StackState } from './state.js';

/** What the API layer reads: rows turned into the contract's views, secrets masked. */

export async function summaryOf(state: StackState, row: StackRow): Promise<StackSummary> {
  const rows = await stackStore.treeResources(state.db, row.root_id);
  const mine = rows.filter((r) => r.stack_path === row.path || r.stack_path.startsWith(`${row.path}/`));
  return {
    id: row.id, name: row.name, status: heatStatus(row.status), statusReason: row.status_reason,
    resourcesTotal: mine.length,
    resourcesComplete: mine.filter((r) => r.status.endsWith('_COMPLETE') && r.status !== 'INIT_COMPLETE').length,
    timeoutMins: row.timeout_mins, createdAt: row.created_at, updatedAt: row.updated_at,
  };
}

export async function detailOf(state: StackState, row: StackRow): Promise<StackDetail> {
  const loaded = await state.loaded(row);
  // Only what the outputs read: a live group (or template resource) brings in its whole nested tree,
  // which made `stack show` of a 1,000-member group take seconds. treeSecrets below covers the masking.
  const read = new Set([...loaded.outputs.values()].flatMap((o) => [...o.refs.resources, ...o.refs.attrs].map((r) => r.name)));
  const live = await state.live(state.db, row, read);
  const outputs: StackOutput[] = [];
  for (const [name, o] of loaded.outputs) {
    try {
      outputs.push({ name, description: o.description ?? '', value: state.resolveIn(loaded, live, o.value) });
    } catch (e) {
      outputs.push({ name, description: o.description ?? '', error: (e as Error).message });
    }
  }
  const params = Object.fromEntries(Object.entries(loaded.parameters).filter(([k]) => !PSEUDO_PARAMETERS.includes(k)));
  const secrets = await state.treeSecrets(state.db, row.root_id);
  for (const s of live.secrets) secrets.add(s);
  return {
    ...(await summaryOf(state, row)),
    description: loaded.template.description ?? '',
    parameters: maskParameters(params, loaded.hiddenParameters),
    outputs: outputs.map((o) => ({ ...o, value: maskValue(o.value, secrets) })),
  };
}

function requiredBy(rows: ResourceRow[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) for (const d of JSON.parse(r.depends_on) as string[]) out.set(`${r.stack_id}/${d}`, [...(out.get(`${r.stack_id}/${d}`) ?? []), r.name]);
  return out;
}

function viewOf(r: ResourceRow, stackPath: string, req: Map<string, string[]>): ResourceView {
  return {
    name: r.name, type: r.type, stackPath, physicalId: r.physical_id, status: heatStatus(r.status),
    statusReason: r.status_reason, updatedAt: r.updated_at, requiredBy: (req.get(`${r.stack_id}/${r.name}`) ?? []).sort(),
  };
}

/** The stack's resources and those of nested stacks down to `nestedDepth` levels. */
export async function resourcesOf(state: StackState, row: StackRow, nestedDepth: number): Promise<ResourceView[]> {
  const depth = (p: string) => p.split('/').length - row.path.split('/').length;
  const rows = (await stackStore.treeResources(state.db, row.root_id))
    .filter((r) => (r.stack_path === row.path || r.stack_path.startsWith(`${row.path}/`)) && depth(r.stack_path) <= nestedDepth);
  const req = requiredBy(rows);
  return rows.map((r) => viewOf(r, r.stack_path, req));
}

/** One resource; `name` may be a path through nested stacks (`Group/0/Deploy`). */
export async function resourceOf(state: StackState, top: StackRow, name: string): Promise<ResourceDetail | undefined> {
  const parts = name.split('/');
  const stack = parts.length === 1 ? top : await stackStore.byPath(state.db, [top.path, ...parts.slice(0, -1)].join('/'));
  if (!stack || stack.root_id !== top.root_id) return undefined;
  const res = parts[parts.length - 1];
  const row = await stackStore.resource(state.db, stack.id, res);
  if (!row) return undefined;
  const siblings = await stackStore.resources(state.db, stack.id);
  const live = await state.live(state.db, stack, [res]);
  const secrets = await state.treeSecrets(state.db, top.root_id);
  for (const s of live.secrets) secrets.add(s);
  const e = live.entries.get(res);
  let attributes: Record<string, unknown> = {};
  if (e?.data !== undefined) {
    try {
      attributes = e.plugin.nestedAttribute ? { ...(e.plugin.nestedAttribute(e.data, undefined, [], e.child) as Record<string, unknown>) } : allAttributes(e.plugin, e.data);
    } catch { attributes = {}; }
    for (const k of e.plugin.secretKeys ?? []) if (k in attributes) attributes[k] = MASK;
  }
  return {
    ...viewOf(row, stack.path, requiredBy(siblings)),
    properties: maskValue(state.openProperties(row), secrets) as Record<string, unknown>,
    attributes: maskValue(attributes, secrets) as Record<string, unknown>,
  };
}

export function eventOf(root: StackRow, e: EventRow): StackEvent {
  return { id: e.id, stack: root.name, stackPath: e.stack_path, resource: e.resource, physicalId: e.physical_id, status: heatStatus(e.status), statusReason: e.status_reason, at: e.at };
}

const FAILURE_KEYS = ['statusCode', 'stderrTail', 'node', 'config'];

/** Failed resources whose data carries a deployment's failure (the keys the software plug-in stores). */
export async function failuresOf(state: StackState, root: StackRow): Promise<DeploymentFailure[]> {
  const out: DeploymentFailure[] = [];
  for (const r of await stackStore.treeResources(state.db, root.root_id)) {
    if (!r.status.endsWith('_FAILED')) continue;
    const data = state.openData(r);
    if (!data || !FAILURE_KEYS.some((k) => k in data)) continue;
    out.push({
      stackPath: r.stack_path, resource: r.name, node: String(data.node ?? ''), config: String(data.config ?? ''),
      statusCode: Number(data.statusCode ?? 0), stderrTail: String(data.stderrTail ?? ''), statusReason: r.status_reason,
    });
  }
  return out;
}
