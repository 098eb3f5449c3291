import { randomUUID } from 'node:crypto';
import { isOspError } from '../../../common/errors.js';
import { SecretBox } from '../../security/secrets.js';
import { stackStore, type ResourceChange, type ResourceRow, type StackRow } from '../../store/stacks.js';
import type { LoadedStack } from '../hot/stack.js';
import { ResourceFailure, type ResourceContext, type ResourceData, type ResourcePlugin, type StackAction, type NestedStacks } from './contract.js';
import { maskValue } from './sealing.js';
import { checkStack, listFailures } from './check.js';
import { runGraph } from './scheduler.js';
import { jsonClone, sameJson, type StackState, type StoredRequest, type LiveView } from './state.js';

/** Why an operation's signal aborted: the stack's timeout, or ospd stopping (which leaves the state to resume). */
export class OperationAborted extends Error {
  constructor(readonly kind: 'timeout' | 'stop' | 'cancel', message: string) {
    super(message);
  }
}

/** A resource failed; the message is the stack's status reason. */
export class StepFailed extends Error {}

/** One running operation on a stack tree: everything its resources share. */
export interface Operation {
  rootId: string;
  rootName: string;
  action: StackAction;
  actor: string;
  signal: AbortSignal;
  deadlineAt: number;
  concurrency: number;
  /**
   * The request differs from the one the stack was last run with (templates,
   * environments, parameters). A nested stack's inputs are more than its
   * resource's properties — `parameter_defaults` and the nested templates'
   * own text reach it through the environment and the bundle — so, as in
   * Heat, such a request updates every nested stack, and their own diffs
   * decide what changes. An identical request leaves them untouched.
   */
  requestChanged: boolean;
}

export const isStop = (e: unknown): boolean => e instanceof OperationAborted && e.kind === 'stop';

/** Settles with `p`, or rejects with the signal's reason as soon as it aborts (a plug-in that ignores its signal does not hold the stack). */
export function race<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // The plug-in was already called (its promise is the argument): its own failure must not go unhandled.
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolveP, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolveP, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

type Seal = (data: ResourceData) => string;

/** A plug-in's own timeout (AbortSignal.timeout) fired, as opposed to the operation's. */
export const isTimeoutError = (e: unknown): boolean => e instanceof Error && e.name === 'TimeoutError';

/**
 * Create, update and delete of one stack (top-level or nested), step by
 * step in the store so that a restart continues from what is written.
 */
export class StackRunner {
  constructor(readonly state: StackState) {}

  /**
   * Brings the stack's resources to what `loaded` says: new ones created,
   * changed ones updated or replaced, unchanged ones left alone, removed ones
   * deleted last. Resumes an interrupted run from the stored statuses.
   */
  async converge(op: Operation, stack: StackRow, loaded: LoadedStack): Promise<void> {
    const rows = new Map((await stackStore.resources(this.state.db, stack.id)).map((r) => [r.name, r]));
    const now = new Date().toISOString();
    const fresh = [...loaded.resources.values()].filter((r) => !rows.has(r.name));
    if (fresh.length) {
      await this.state.commit(async (tx) => {
        for (const r of fresh) {
          await stackStore.insertResource(tx, { stack_id: stack.id, name: r.name, type: r.type, status: 'INIT_COMPLETE', status_reason: '', properties: '{}', data: null, physical_id: '', depends_on: JSON.stringify([...r.dependsOn].sort()), updated_at: now });
        }
      });
    }
    const err = await runGraph(loaded.dependencies, op.concurrency, op.signal, (name) => this.step(op, stack, loaded, name));
    if (err) throw err;
    const removed = [...rows.values()].filter((r) => !loaded.resources.has(r.name));
    if (removed.length) await this.deleteRows(op, stack, removed);
  }

  /** Deletes a whole stack's resources in reverse dependency order, then the stack itself. */
  async deleteStack(op: Operation, stack: StackRow): Promise<void> {
    await this.deleteRows(op, stack, await stackStore.resources(this.state.db, stack.id));
    await this.state.commit(async (tx, emit) => {
      const at = new Date().toISOString();
      await emit({ rootId: op.rootId, stack: op.rootName, stackPath: stack.path, resource: stack.name, physicalId: stack.id, status: 'DELETE_COMPLETE', statusReason: 'Stack DELETE completed successfully', at });
      // The row goes in the same transaction (with its events): listeners still get the DELETE_COMPLETE.
      await stackStore.deleteStack(tx, stack.id);
    });
    this.state.forget(stack.id);
  }

  private async deleteRows(op: Operation, stack: StackRow, rows: ResourceRow[]): Promise<void> {
    const names = new Set(rows.map((r) => r.name));
    const byName = new Map(rows.map((r) => [r.name, r]));
    // A resource goes once everything that depends on it is gone: the graph reversed.
    const deps = new Map<string, Set<string>>(rows.map((r) => [r.name, new Set<string>()]));
    for (const r of rows) for (const d of JSON.parse(r.depends_on) as string[]) if (names.has(d)) deps.get(d)!.add(r.name);
    const err = await runGraph(deps, op.concurrency, op.signal, (name) => this.deleteOne(op, stack, byName.get(name)!));
    if (err) throw err;
  }

  private async deleteOne(op: Operation, stack: StackRow, stale: ResourceRow): Promise<void> {
    const row = (await stackStore.resource(this.state.db, stack.id, stale.name)) ?? stale;
    if (row.status === 'INIT_COMPLETE' && row.data === null) {
      await this.state.commit((tx) => stackStore.deleteResource(tx, stack.id, row.name));
      return;
    }
    await this.guard(op, stack, row.name, 'DELETE', async () => {
      await this.write(op, stack, row.name, { status: 'DELETE_IN_PROGRESS', status_reason: 'state changed' });
      const plugin = this.state.pluginFor(row.type);
      const ctx = this.context(op, stack, row.name, plugin, undefined, row.type);
      await race(plugin.delete(ctx, this.state.openData(row)), ctx.signal);
      await this.state.commit(async (tx, emit) => {
        await stackStore.deleteResource(tx, stack.id, row.name);
        await emit({ rootId: op.rootId, stack: op.rootName, stackPath: stack.path, resource: row.name, physicalId: row.physical_id, status: 'DELETE_COMPLETE', statusReason: 'state changed', at: new Date().toISOString() });
      });
    });
  }

  /** One resource of a create or update: decide what it needs from its stored row and its resolved properties, and do it. */
  private async step(op: Operation, stack: StackRow, loaded: LoadedStack, name: string): Promise<void> {
    const lr = loaded.resources.get(name)!;
    let row = (await stackStore.resource(this.state.db, stack.id, name))!;
    const action: StackAction = row.status === 'INIT_COMPLETE' ? 'CREATE' : op.action === 'CREATE' ? 'CREATE' : 'UPDATE';
    await this.guard(op, stack, name, action, async () => {
      const plugin = this.state.pluginFor(lr.type);
      const live = await this.state.live(this.state.db, stack, lr.dependsOn);
      const props = jsonClone((this.state.resolveIn(loaded, live, lr.def.properties) ?? {}) as Record<string, unknown>);
      const problems = plugin.validate?.(props) ?? [];
      if (problems.length) throw new ResourceFailure(problems.join('; '));
      const tainted = live.secrets.size > 0 && !sameJson(maskValue(props, live.secrets), props);
      const propsText = tainted ? this.state.sealer.sealJson(props) : JSON.stringify(props);
      const deps = JSON.stringify([...lr.dependsOn].sort());
      const ctx = () => this.context(op, stack, name, plugin, loaded, lr.type);
      const seal = (d: ResourceData) => this.state.sealer.sealData(d, plugin.secretKeys, tainted);
      const oldPlugin = this.state.maybePlugin(row.type);
      const data = this.state.openData(row);

      // An interrupted replace or delete: the old resource goes first (delete is idempotent).
      if (row.status === 'DELETE_IN_PROGRESS' || row.status === 'DELETE_FAILED' || row.type !== lr.type || (row.status === 'CREATE_FAILED' && data !== undefined)) {
        if (row.status !== 'INIT_COMPLETE') await this.replaceOld(op, stack, row, oldPlugin);
        row = (await stackStore.resource(this.state.db, stack.id, name))!;
      }
      if (row.data === null) {
        if (row.status === 'CREATE_IN_PROGRESS' && !plugin.createIdempotent) throw new ResourceFailure('ospd restarted mid-operation');
        return this.create(op, stack, name, plugin, ctx(), props, propsText, deps, lr.type, seal);
      }
      const old = this.state.openProperties(row);
      if (row.status.endsWith('_IN_PROGRESS') && data !== undefined && sameJson(old, props)) {
        // Cut after the plug-in's data was stored: observe again, do not redo.
        const act = row.status.slice(0, row.status.indexOf('_IN_PROGRESS')) as StackAction;
        return this.finish(op, stack, name, plugin, ctx(), data, act, seal);
      }
      const nestedInputsMayDiffer = op.requestChanged && plugin.nestedAttribute !== undefined;
      if (sameJson(old, props) && row.status.endsWith('_COMPLETE') && !nestedInputsMayDiffer) {
        // Untouched; only a changed depends_on is recorded, for the order of a later delete.
        if (row.depends_on !== deps) await this.write(op, stack, name, { depends_on: deps }, false);
        return;
      }
      const changed = [...new Set([...Object.keys(old), ...Object.keys(props)])].filter((k) => !sameJson(old[k], props[k]));
      const replace = plugin.replaceOn === '*' || changed.some((k) => (plugin.replaceOn as readonly string[]).includes(k)) || data === undefined;
      if (replace) {
        await this.replaceOld(op, stack, row, plugin);
        return this.create(op, stack, name, plugin, ctx(), props, propsText, deps, lr.type, seal, 'replacing: creating the new resource');
      }
      await this.write(op, stack, name, { status: 'UPDATE_IN_PROGRESS', status_reason: changed.length ? `properties changed: ${changed.join(', ')}` : row.status.endsWith('_COMPLETE') ? 'templates or environment changed: updating the nested stack' : `redoing after ${row.status}`, depends_on: deps });
      const c = ctx();
      const next = await race(plugin.update(c, data, props, old), c.signal);
      await this.write(op, stack, name, { data: seal(next), properties: propsText, physical_id: this.physicalId(plugin, next) }, false);
      await this.finish(op, stack, name, plugin, c, next, 'UPDATE', seal);
    });
  }

  private async create(op: Operation, stack: StackRow, name: string, plugin: ResourcePlugin, ctx: ResourceContext, props: Record<string, unknown>, propsText: string, deps: string, type: string, seal: Seal, reason = 'state changed'): Promise<void> {
    await this.write(op, stack, name, { status: 'CREATE_IN_PROGRESS', status_reason: reason, type, properties: propsText, data: null, physical_id: '', depends_on: deps });
    const data = await race(plugin.create(ctx, props), ctx.signal);
    await this.write(op, stack, name, { data: seal(data), physical_id: this.physicalId(plugin, data) }, false);
    await this.finish(op, stack, name, plugin, ctx, data, 'CREATE', seal);
  }

  private async finish(op: Operation, stack: StackRow, name: string, plugin: ResourcePlugin, ctx: ResourceContext, data: ResourceData, action: StackAction, seal: Seal): Promise<void> {
    const final = plugin.ready ? await race(plugin.ready(ctx, data), ctx.signal) : data;
    await this.write(op, stack, name, { status: `${action}_COMPLETE`, status_reason: 'state changed', data: seal(final), physical_id: this.physicalId(plugin, final) });
  }

  /** The old resource of a replacement (delete first, then create: names stay unique and nothing runs twice). */
  private async replaceOld(op: Operation, stack: StackRow, row: ResourceRow, plugin: ResourcePlugin | undefined): Promise<void> {
    await this.write(op, stack, row.name, { status: 'DELETE_IN_PROGRESS', status_reason: 'replacing: deleting the old resource' });
    if (!plugin) throw new ResourceFailure(`resource type ${row.type} is not implemented by this ospd: the old resource can't be deleted`);
    const ctx = this.context(op, stack, row.name, plugin, undefined, row.type);
    await race(plugin.delete(ctx, this.state.openData(row)), ctx.signal);
    await this.write(op, stack, row.name, { data: null, physical_id: '' }, false);
  }

  /** Secrets never reach the physical id column (RandomString's reference is its value, as in Heat). */
  private physicalId(plugin: ResourcePlugin, data: ResourceData): string {
    const ref = plugin.reference(data);
    return (plugin.secretKeys ?? []).some((k) => data[k] === ref) ? '******' : ref;
  }

  /** Runs a resource's work; a failure is written as `<action>_FAILED` with its reason and details, and stops the stack. */
  private async guard(op: Operation, stack: StackRow, name: string, action: StackAction, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (e) {
      if (isStop(e) || e instanceof StepFailed) throw e;
      const row = await stackStore.resource(this.state.db, stack.id, name);
      let reason: string;
      let details: Record<string, unknown> = {};
      if (e instanceof OperationAborted) reason = e.message;
      else if (isTimeoutError(e)) reason = `timed out after ${Math.round((this.state.maybePlugin(row?.type ?? '')?.timeoutMs ?? 0) / 1000)} s`;
      else if (e instanceof ResourceFailure) { reason = e.message; details = e.details; } else if (isOspError(e)) reason = e.message;
      else { reason = (e as Error)?.message ?? String(e); this.state.log.error({ err: e, stack: stack.path, resource: name }, 'resource operation failed unexpectedly'); }
      const failedAction = row && row.status.endsWith('_IN_PROGRESS') ? row.status.slice(0, row.status.indexOf('_IN_PROGRESS')) : action;
      const change: ResourceChange = { status: `${failedAction}_FAILED`, status_reason: reason };
      if (Object.keys(details).length) {
        const plugin = row ? this.state.maybePlugin(row.type) : undefined;
        const data = row ? this.state.openData(row) ?? {} : {};
        change.data = this.state.sealer.sealData({ ...data, ...details }, plugin?.secretKeys, row?.data ? SecretBox.isSealed(row.data) : false);
      }
      await this.write(op, stack, name, change);
      throw new StepFailed(e instanceof OperationAborted ? e.message : `Resource ${failedAction} failed: ${name}: ${reason}`);
    }
  }

  /** Writes a resource change; a status or reason change is an event in the same transaction. */
  async write(op: Operation, stack: StackRow, name: string, change: ResourceChange, event = true): Promise<void> {
    if (op.signal.aborted && isStop(op.signal.reason)) throw op.signal.reason;
    const at = new Date().toISOString();
    await this.state.commit(async (tx, emit) => {
      await stackStore.updateResource(tx, stack.id, name, change, at);
      if (!event) return;
      const row = await stackStore.resource(tx, stack.id, name);
      await emit({ rootId: op.rootId, stack: op.rootName, stackPath: stack.path, resource: name, physicalId: row?.physical_id ?? '', status: (row?.status ?? change.status) as never, statusReason: row?.status_reason ?? '', at });
    });
  }

  context(op: Operation, stack: StackRow, name: string, plugin: ResourcePlugin, loaded: LoadedStack | undefined, type: string): ResourceContext {
    const signal = plugin.timeoutMs ? AbortSignal.any([op.signal, AbortSignal.timeout(plugin.timeoutMs)]) : op.signal;
    const deadlineAt = plugin.timeoutMs ? Math.min(op.deadlineAt, Date.now() + plugin.timeoutMs) : op.deadlineAt;
    return {
      stack: { id: stack.id, name: stack.name, path: stack.path },
      name, actor: op.actor, signal, deadlineAt,
      log: this.state.log.child({ stack: stack.path, resource: name }),
      progress: (reason) => { void this.write(op, stack, name, { status_reason: reason }).catch((err) => this.state.log.warn({ err }, 'progress not recorded')); },
      nested: plugin.nestedAttribute ? this.nested(op, stack, name, loaded, type) : undefined,
    };
  }

  /** The child stack `<stack path>/<resource>` of a plug-in that owns one. */
  private nested(op: Operation, stack: StackRow, name: string, loaded: LoadedStack | undefined, type: string): NestedStacks {
    const db = this.state.db;
    const templatePath = loaded?.template.path ?? '';
    return {
      templatePath,
      typeTemplate: this.state.registry.get(type) ? undefined : type,
      apply: async (tmpl, parameters) => {
        if (!loaded) throw new Error('nested.apply outside a create or update');
        return this.applyChild(op, stack, loaded, name, { template: tmpl.path, text: 'text' in tmpl ? tmpl.text : undefined, environments: [], parameters });
      },
      remove: async () => {
        const child = await stackStore.child(db, stack.id, name);
        if (!child) return;
        await this.stackStatus(op, child, 'DELETE', 'IN_PROGRESS', 'Stack DELETE started');
        try { await this.deleteStack(op, child); } catch (e) { throw await this.childFailed(op, child, 'DELETE', e); }
      },
      get: async () => {
        const child = await stackStore.child(db, stack.id, name);
        return child ? this.state.view(db, child) : undefined;
      },
      check: async () => {
        const child = await stackStore.child(db, stack.id, name);
        if (!child) throw new ResourceFailure(`nested stack ${stack.path}/${name} does not exist`);
        const failed = await checkStack(this, op, child, true);
        if (failed.length) throw new ResourceFailure(`nested stack ${child.path}: ${listFailures(failed)}`);
      },
    };
  }

  private async applyChild(op: Operation, parent: StackRow, parentLoaded: LoadedStack, resource: string, req: StoredRequest): Promise<LiveView> {
    const db = this.state.db;
    const path = `${parent.path}/${resource}`;
    const childLoaded = this.state.loadChild(parentLoaded, resource, req, path);
    let child = await stackStore.child(db, parent.id, resource);
    // A child cut by a restart carries on with its own operation.
    const action: StackAction = !child ? 'CREATE' : child.status.endsWith('_IN_PROGRESS') ? child.action as StackAction : 'UPDATE';
    const at = new Date().toISOString();
    const sealed = this.state.sealer.sealJson(req);
    await this.state.commit(async (tx, emit) => {
      if (child) {
        await stackStore.beginOperation(tx, child.id, { action, status: `${action}_IN_PROGRESS`, reason: `Stack ${action} started`, at, actor: op.actor, timeoutMins: 0, request: sealed });
      } else {
        child = { id: randomUUID(), name: path, path, parent_id: parent.id, parent_resource: resource, root_id: op.rootId, action, status: 'CREATE_IN_PROGRESS', status_reason: 'Stack CREATE started', operation_started_at: at, actor: op.actor, request: sealed, request_version: 1, files: '', timeout_mins: 0, created_at: at, updated_at: at };
        await stackStore.insert(tx, child);
      }
      await emit({ rootId: op.rootId, stack: op.rootName, stackPath: path, resource: path, physicalId: child.id, status: `${action}_IN_PROGRESS`, statusReason: `Stack ${action} started`, at });
    });
    child = (await stackStore.child(db, parent.id, resource))!;
    this.state.remember(child, childLoaded);
    try {
      await this.converge(op, child, childLoaded);
    } catch (e) {
      throw await this.childFailed(op, child, action, e);
    }
    await this.stackStatus(op, child, action, 'COMPLETE', `Stack ${action} completed successfully`);
    return this.state.view(db, child);
  }

  private async childFailed(op: Operation, child: StackRow, action: StackAction, e: unknown): Promise<unknown> {
    if (isStop(e)) return e;
    const reason = (e as Error)?.message ?? String(e);
    await this.stackStatus(op, child, action, 'FAILED', reason);
    return e instanceof OperationAborted ? e : new ResourceFailure(`nested stack ${child.path}: ${reason}`);
  }

  /**
   * The end of a failed operation: whatever of the tree is still in progress
   * (a resource the timeout cut, a nested stack) fails with the stack's reason,
   * so nothing stays IN_PROGRESS.
   */
  async failTree(op: Operation, root: StackRow, reason: string): Promise<void> {
    const at = new Date().toISOString();
    await this.state.commit(async (tx, emit) => {
      const failed = (s: string) => s.replace('_IN_PROGRESS', '_FAILED');
      for (const r of await stackStore.treeResources(tx, root.root_id)) {
        if (!r.status.endsWith('_IN_PROGRESS')) continue;
        await stackStore.updateResource(tx, r.stack_id, r.name, { status: failed(r.status), status_reason: reason }, at);
        await emit({ rootId: op.rootId, stack: op.rootName, stackPath: r.stack_path, resource: r.name, physicalId: r.physical_id, status: failed(r.status) as never, statusReason: reason, at });
      }
      for (const s of (await stackStore.tree(tx, root.root_id)).reverse()) {
        if (!s.status.endsWith('_IN_PROGRESS')) continue;
        const status = failed(s.status);
        await stackStore.setStatus(tx, s.id, s.action, status, reason, at);
        await emit({ rootId: op.rootId, stack: op.rootName, stackPath: s.path, resource: s.name, physicalId: s.id, status: status as never, statusReason: reason, at });
      }
    });
  }

  /** A stack's own status change and its event, in one transaction. */
  async stackStatus(op: Operation, stack: StackRow, action: StackAction, state: 'IN_PROGRESS' | 'COMPLETE' | 'FAILED', reason: string): Promise<void> {
    const at = new Date().toISOString();
    await this.state.commit(async (tx, emit) => {
      await stackStore.setStatus(tx, stack.id, action, `${action}_${state}`, reason, at);
      await emit({ rootId: op.rootId, stack: op.rootName, stackPath: stack.path, resource: stack.name, physicalId: stack.id, status: `${action}_${state}`, statusReason: reason, at });
    });
  }
}
