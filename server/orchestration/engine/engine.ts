import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { OspError } from '../../../common/errors.js';
import type { Logger } from '../../../common/logging.js';
import type { Service } from '../../lifecycle.js';
import type { SecretBox } from '../../security/secrets.js';
import type { Database } from '../../store/db.js';
import { stackStore, type StackRow } from '../../store/stacks.js';
import { makeBundle } from '../hot/bundle.js';
import { maskParameters } from '../hot/parameters.js';
import { templateInvalid } from '../hot/problems.js';
import { validateStack, type LoadedStack } from '../hot/stack.js';
import { PSEUDO_PARAMETERS } from '../hot/template.js';
import { noneResource } from '../resources/none.js';
import { randomStringResource } from '../resources/random-string.js';
import { resourceGroupResource } from '../resources/resource-group.js';
import { templateResource } from '../resources/template-resource.js';
import { valueResource } from '../resources/value.js';
import { waitConditionHandleResource, waitConditionResource, type WaitSignal, type WaitSignals } from '../resources/wait-condition.js';
import type {
  DeploymentFailure, ResourceDetail, ResourcePlugin, ResourceView, StackAction, StackDetail, StackEvent, StackOperations, StackPlan, StackRequest, StackSummary,
} from './contract.js';
import { checkStack } from './check.js';
import { isStop, OperationAborted, StackRunner, type Operation } from './operation.js';
import { planOf } from './plan.js';
import { PluginRegistry } from './registry.js';
import { StackSealer } from './sealing.js';
import { isInProgress, StackState, type StoredRequest } from './state.js';
import { detailOf, eventOf, failuresOf, resourceOf, resourcesOf, summaryOf } from './views.js';

export interface StackEngineDeps {
  db: Database;
  secrets: SecretBox;
  /** Resource types beyond the built-in OS::Heat ones (the software deployments, the bare-metal server). */
  plugins: ResourcePlugin[];
  log: Logger;
  /** Resources of one stack worked on at once. */
  concurrency?: number;
  /** A stack's timeout when its request names none (Heat's default is 60). */
  defaultTimeoutMins?: number;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,254}$/;
const WAIT_HANDLE = 'OS::Heat::WaitConditionHandle';

interface Running { action: StackAction; controller: AbortController; done: Promise<void> }

/**
 * Stacks in ospd (issue 12): the StackOperations the API calls, run in the
 * background with every step in the store. One operation per stack at a
 * time; start() resumes what a stop or a crash left in progress.
 */
export class StackEngine implements StackOperations, Service {
  private readonly state: StackState;
  private readonly runner: StackRunner;
  private readonly running = new Map<string, Running>();
  private readonly concurrency: number;
  private readonly defaultTimeoutMins: number;
  private readonly waiters = new Map<string, Set<() => void>>();
  private stopped = false;

  constructor(private readonly deps: StackEngineDeps) {
    this.concurrency = deps.concurrency ?? 8;
    this.defaultTimeoutMins = deps.defaultTimeoutMins ?? 60;
    const signals: WaitSignals = { read: (ref) => this.readSignals(ref), next: (ref, timeoutMs, signal) => this.nextSignal(ref, timeoutMs, signal) };
    const registry = new PluginRegistry([
      valueResource, noneResource, randomStringResource, resourceGroupResource,
      waitConditionHandleResource, waitConditionResource(signals), ...deps.plugins,
    ]);
    this.state = new StackState(deps.db, new StackSealer(deps.secrets), registry, templateResource, deps.log);
    this.runner = new StackRunner(this.state);
  }

  async start(): Promise<void> {
    this.stopped = false;
    for (const row of await stackStore.inProgressTop(this.deps.db)) {
      this.deps.log.info({ stack: row.name, action: row.action }, 'resuming stack operation after restart');
      this.launch(row, row.action as StackAction);
    }
  }

  /** Aborts running operations without marking them failed: the next start() resumes them. */
  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.running.values()];
    for (const r of all) r.controller.abort(new OperationAborted('stop', 'ospd stopping'));
    await Promise.all(all.map((r) => r.done));
  }

  // ---- requests ---------------------------------------------------------

  private checkRequest(req: StackRequest): { loaded: LoadedStack; notes: string[] } {
    if (!NAME.test(req.name ?? '')) {
      throw new OspError('INVALID_ARGUMENT', `stack name ${JSON.stringify(req.name)}: expected a letter then letters, digits, '_', '.' or '-' (at most 255)`, { field: 'name', value: req.name, expected: 'a stack name' });
    }
    if (req.timeoutMins !== undefined && !(Number.isInteger(req.timeoutMins) && req.timeoutMins >= 0)) {
      throw new OspError('INVALID_ARGUMENT', `stack ${req.name}: timeout_mins ${req.timeoutMins}: expected a whole number of minutes ≥ 0`, { field: 'timeout_mins', value: req.timeoutMins, expected: 'an integer ≥ 0' });
    }
    const r = validateStack(makeBundle(req.files), { template: req.template, environments: req.environments, parameters: req.parameters }, this.state.stackOptions(req.name));
    if (!r.stack) throw templateInvalid(r.problems);
    return { loaded: r.stack, notes: r.notes };
  }

  async validate(req: StackRequest): Promise<{ parameters: Record<string, unknown>; resources: { name: string; type: string }[]; notes: string[] }> {
    const { loaded, notes } = this.checkRequest(req);
    const params = Object.fromEntries(Object.entries(loaded.parameters).filter(([k]) => !PSEUDO_PARAMETERS.includes(k)));
    return { parameters: maskParameters(params, loaded.hiddenParameters), resources: [...loaded.resources.values()].map((r) => ({ name: r.name, type: r.type })), notes };
  }

  async create(req: StackRequest): Promise<StackSummary | StackPlan> {
    this.refuseWhenStopped();
    if (NAME.test(req.name ?? '') && await stackStore.byPath(this.deps.db, req.name)) throw this.exists(req.name);
    const { loaded } = this.checkRequest(req);
    if (req.dryRun) return { create: [...loaded.resources.keys()].sort(), update: [], replace: [], delete: [], unchanged: [] };
    const at = new Date().toISOString();
    const row: StackRow = {
      id: randomUUID(), name: req.name, path: req.name, parent_id: null, parent_resource: '', root_id: '', action: 'CREATE',
      status: 'CREATE_IN_PROGRESS', status_reason: 'Stack CREATE started', operation_started_at: at, actor: req.actor,
      request: this.state.sealer.sealJson(this.stored(req)), request_version: 1, files: this.state.encodeFiles(req.files),
      timeout_mins: req.timeoutMins || this.defaultTimeoutMins, created_at: at, updated_at: at,
    };
    row.root_id = row.id;
    await this.state.commit(async (tx, emit) => {
      if (await stackStore.byPath(tx, req.name)) throw this.exists(req.name);
      await stackStore.insert(tx, row);
      for (const r of loaded.resources.values()) {
        await stackStore.insertResource(tx, { stack_id: row.id, name: r.name, type: r.type, status: 'INIT_COMPLETE', status_reason: '', properties: '{}', data: null, physical_id: '', depends_on: JSON.stringify([...r.dependsOn].sort()), updated_at: at });
      }
      await emit({ rootId: row.id, stack: row.name, stackPath: row.path, resource: row.name, physicalId: row.id, status: 'CREATE_IN_PROGRESS', statusReason: 'Stack CREATE started', at });
    });
    this.state.remember(row, loaded);
    this.launch(row, 'CREATE');
    return summaryOf(this.state, row);
  }

  async update(req: StackRequest): Promise<StackSummary | StackPlan> {
    this.refuseWhenStopped();
    const existing = await this.top(req.name);
    this.refuseInProgress(existing);
    const { loaded } = this.checkRequest(req);
    if (req.dryRun) return planOf(this.state, existing, loaded);
    const at = new Date().toISOString();
    let row: StackRow | undefined;
    const files = new Map(Object.entries(req.files));
    const requestChanged = this.state.storedDigest(existing) !== this.state.requestDigest(this.stored(req), files);
    await this.state.commit(async (tx, emit) => {
      const cur = await stackStore.byPath(tx, req.name);
      if (!cur) throw this.notFound(req.name);
      this.refuseInProgress(cur);
      await stackStore.beginOperation(tx, cur.id, {
        action: 'UPDATE', status: 'UPDATE_IN_PROGRESS', reason: 'Stack UPDATE started', at, actor: req.actor,
        timeoutMins: req.timeoutMins || this.defaultTimeoutMins, request: this.state.sealer.sealJson(this.stored(req)), files: this.state.encodeFiles(req.files),
      });
      row = await stackStore.byId(tx, cur.id);
      await emit({ rootId: cur.id, stack: cur.name, stackPath: cur.path, resource: cur.name, physicalId: cur.id, status: 'UPDATE_IN_PROGRESS', statusReason: 'Stack UPDATE started', at });
    });
    this.state.remember(row!, loaded);
    this.launch(row!, 'UPDATE', requestChanged);
    return summaryOf(this.state, row!);
  }

  async delete(name: string, actor: string): Promise<StackSummary> {
    this.refuseWhenStopped();
    await this.cancelForDelete(name);
    const at = new Date().toISOString();
    let row: StackRow | undefined;
    await this.state.commit(async (tx, emit) => {
      const cur = await stackStore.byPath(tx, name);
      if (!cur || cur.parent_id !== null) throw this.notFound(name);
      this.refuseInProgress(cur);
      await stackStore.beginOperation(tx, cur.id, { action: 'DELETE', status: 'DELETE_IN_PROGRESS', reason: 'Stack DELETE started', at, actor, timeoutMins: cur.timeout_mins });
      row = await stackStore.byId(tx, cur.id);
      await emit({ rootId: cur.id, stack: cur.name, stackPath: cur.path, resource: cur.name, physicalId: cur.id, status: 'DELETE_IN_PROGRESS', statusReason: 'Stack DELETE started', at });
    });
    this.launch(row!, 'DELETE');
    return summaryOf(this.state, row!);
  }

  /**
   * As in Heat, deleting a stack mid-create or mid-update first cancels that
   * operation (it fails, as on a timeout): a stack waiting on a dead node is
   * not stuck until its timeout. A delete in progress is left to run.
   */
  private async cancelForDelete(name: string): Promise<void> {
    const cur = await stackStore.byPath(this.deps.db, name);
    const run = cur && cur.parent_id === null ? this.running.get(cur.id) : undefined;
    if (!run || run.action === 'DELETE') return;
    this.deps.log.info({ stack: name, action: run.action }, 'stack operation cancelled by a delete');
    run.controller.abort(new OperationAborted('cancel', `${run.action} cancelled by a stack delete`));
    await run.done;
  }

  /** Heat's stack CHECK (check.ts); like delete, it keeps the stack's request and timeout. */
  async check(name: string, actor: string): Promise<StackSummary> {
    this.refuseWhenStopped();
    const at = new Date().toISOString();
    let row: StackRow | undefined;
    await this.state.commit(async (tx, emit) => {
      const cur = await stackStore.byPath(tx, name);
      if (!cur || cur.parent_id !== null) throw this.notFound(name);
      this.refuseInProgress(cur);
      await stackStore.beginOperation(tx, cur.id, { action: 'CHECK', status: 'CHECK_IN_PROGRESS', reason: 'Stack CHECK started', at, actor, timeoutMins: cur.timeout_mins });
      row = await stackStore.byId(tx, cur.id);
      await emit({ rootId: cur.id, stack: cur.name, stackPath: cur.path, resource: cur.name, physicalId: cur.id, status: 'CHECK_IN_PROGRESS', statusReason: 'Stack CHECK started', at });
    });
    this.launch(row!, 'CHECK');
    return summaryOf(this.state, row!);
  }

  private stored(req: StackRequest): StoredRequest {
    return { template: req.template, environments: req.environments ?? [], parameters: req.parameters ?? {} };
  }

  // ---- running ------------------------------------------------------------

  /**
   * Runs the stack's current operation in the background until it completes, fails, times out or ospd stops.
   * `requestChanged`: see Operation; unknown after a restart, so assumed.
   */
  private launch(row: StackRow, action: StackAction, requestChanged = true): void {
    const controller = new AbortController();
    // Every running resource and wait listens on the operation's signal.
    setMaxListeners(0, controller.signal);
    const timeoutMs = row.timeout_mins * 60_000;
    const deadlineAt = Date.parse(row.operation_started_at) + timeoutMs;
    // setTimeout takes at most 2^31-1 ms (24.8 days); a longer timeout is re-armed when it fires early.
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      const leftMs = deadlineAt - Date.now();
      timer = setTimeout(() => (Date.now() >= deadlineAt ? controller.abort(new OperationAborted('timeout', `timed out after ${row.timeout_mins} min`)) : arm()), Math.min(Math.max(0, leftMs), 2 ** 31 - 1));
    };
    arm();
    const op: Operation = { rootId: row.id, rootName: row.name, action, actor: row.actor, signal: controller.signal, deadlineAt, concurrency: this.concurrency, requestChanged };
    const done = (async () => {
      try {
        if (action === 'DELETE') {
          await this.runner.deleteStack(op, row);
        } else if (action === 'CHECK') {
          await checkStack(this.runner, op, row, false);
        } else {
          await this.runner.converge(op, row, await this.state.loaded(row));
          await this.runner.stackStatus(op, row, action, 'COMPLETE', `Stack ${action} completed successfully`);
        }
      } catch (e) {
        if (isStop(e) || (controller.signal.aborted && isStop(controller.signal.reason))) return;
        const reason = controller.signal.aborted && controller.signal.reason instanceof OperationAborted ? controller.signal.reason.message : (e as Error)?.message ?? String(e);
        await this.runner.failTree(op, row, reason)
          .catch((err) => this.deps.log.error({ err, stack: row.name }, 'stack failure not recorded'));
      } finally {
        clearTimeout(timer);
        this.running.delete(row.id);
      }
    })();
    this.running.set(row.id, { action, controller, done });
  }

  private refuseWhenStopped(): void {
    if (this.stopped) throw new OspError('UNAVAILABLE', 'the stack engine is stopping');
  }

  private refuseInProgress(row: StackRow): void {
    if (isInProgress(row.status) || this.running.has(row.id)) {
      throw new OspError('STACK_IN_PROGRESS', `stack ${row.name}: ${row.action} in progress since ${row.operation_started_at}`, { state: row.status, action: row.action });
    }
  }

  private exists(name: string): OspError {
    return new OspError('STACK_EXISTS', `stack ${name} already exists`, { field: 'name', value: name });
  }

  private notFound(name: string): OspError {
    return new OspError('STACK_NOT_FOUND', `stack ${name} not found`, { field: 'name', value: name });
  }

  private async top(name: string): Promise<StackRow> {
    const row = await stackStore.byPath(this.deps.db, name);
    if (!row || row.parent_id !== null) throw this.notFound(name);
    return row;
  }

  // ---- reading --------------------------------------------------------------

  async list(page: { limit?: number; marker?: string }): Promise<{ stacks: StackSummary[]; nextMarker: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 1000);
    const rows = await stackStore.listTop(this.deps.db, limit + 1, page.marker ?? '');
    const stacks = await Promise.all(rows.slice(0, limit).map((r) => summaryOf(this.state, r)));
    return { stacks, nextMarker: rows.length > limit ? rows[limit - 1].name : '' };
  }

  async get(name: string): Promise<StackDetail> {
    return detailOf(this.state, await this.top(name));
  }

  async resources(name: string, nestedDepth: number): Promise<ResourceView[]> {
    return resourcesOf(this.state, await this.top(name), Math.max(0, nestedDepth));
  }

  /** `name` is a top-level stack or a nested stack's path (`top/Compute/0`), as GetStackResource documents. */
  async resource(name: string, resource: string): Promise<ResourceDetail> {
    const [topName, ...nested] = name.split('/');
    const d = await resourceOf(this.state, await this.top(topName), [...nested, resource].join('/'));
    if (!d) throw new OspError('NOT_FOUND', `stack ${name}: no resource ${resource}`, { field: 'resource', value: resource });
    return d;
  }

  async events(name: string, page: { after?: number; limit?: number }): Promise<StackEvent[]> {
    const row = await this.top(name);
    const limit = Math.min(Math.max(page.limit ?? 1000, 1), 10_000);
    return (await stackStore.events(this.deps.db, row.id, page.after ?? 0, limit)).map((e) => eventOf(row, e));
  }

  onEvent(fn: (e: StackEvent) => void): () => void {
    this.state.listeners.add(fn);
    return () => { this.state.listeners.delete(fn); };
  }

  async failures(name: string): Promise<DeploymentFailure[]> {
    return failuresOf(this.state, await this.top(name));
  }

  // ---- wait conditions --------------------------------------------------------

  /**
   * A signal to an OS::Heat::WaitConditionHandle (from an agent or ospctl).
   * `stack` is a top-level name or a nested stack's path; `id` defaults to the next number, as in Heat.
   */
  async signal(stack: string, handle: string, s: { status?: string; reason?: string; data?: unknown; id?: string }): Promise<void> {
    const status = s.status ?? 'SUCCESS';
    if (status !== 'SUCCESS' && status !== 'FAILURE') {
      throw new OspError('INVALID_ARGUMENT', `signal to ${stack}/${handle}: status ${JSON.stringify(status)}: expected SUCCESS or FAILURE`, { field: 'status', value: status, expected: 'SUCCESS or FAILURE' });
    }
    const row = await stackStore.byPath(this.deps.db, stack);
    if (!row) throw this.notFound(stack);
    let ref = '';
    await this.state.commit(async (tx, emit) => {
      const r = await stackStore.resource(tx, row.id, handle);
      if (!r) throw new OspError('NOT_FOUND', `stack ${stack}: no resource ${handle}`, { field: 'resource', value: handle });
      if (r.type !== WAIT_HANDLE) throw new OspError('INVALID_ARGUMENT', `stack ${stack}: resource ${handle} is ${r.type}; signals go to an ${WAIT_HANDLE}`, { field: 'resource', value: handle, expected: WAIT_HANDLE });
      const data = this.state.openData(r);
      if (!data) throw new OspError('FAILED_PRECONDITION', `stack ${stack}: wait condition handle ${handle} is ${r.status}: not ready for signals`, { state: r.status });
      const signals = { ...(data.signals as Record<string, WaitSignal>) };
      const id = s.id ?? String(Object.keys(signals).length + 1);
      signals[id] = { status, reason: s.reason ?? '', data: s.data ?? null };
      ref = String(data.ref);
      const at = new Date().toISOString();
      await stackStore.updateResource(tx, row.id, handle, { data: JSON.stringify({ ...data, signals }) }, at);
      await emit({ rootId: row.root_id, stack: row.path.split('/')[0], stackPath: row.path, resource: handle, physicalId: r.physical_id, status: r.status as never, statusReason: `Signal: status:${status} reason:${s.reason ?? ''}`, at });
    });
    for (const w of this.waiters.get(ref) ?? []) w();
  }

  private async readSignals(ref: string): Promise<Record<string, WaitSignal>> {
    const [stackId, name] = splitRef(ref);
    const r = await stackStore.resource(this.deps.db, stackId, name);
    const data = r ? this.state.openData(r) : undefined;
    if (!data) throw new OspError('NOT_FOUND', `wait condition handle ${ref} not found`);
    return (data.signals ?? {}) as Record<string, WaitSignal>;
  }

  /** Resolves at the next signal to the handle, after `timeoutMs`, or when `signal` aborts. */
  private nextSignal(ref: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolveP) => {
      const set = this.waiters.get(ref) ?? new Set();
      this.waiters.set(ref, set);
      const done = () => { clearTimeout(t); set.delete(done); signal.removeEventListener('abort', done); if (!set.size) this.waiters.delete(ref); resolveP(); };
      const t = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }
}

function splitRef(ref: string): [string, string] {
  const i = ref.indexOf(':');
  return [ref.slice(0, i), ref.slice(i + 1)];
}
