import { isOspError } from '../../../common/errors.js';
import { stackStore, type ResourceRow, type StackRow } from '../../store/stacks.js';
import { ResourceFailure } from './contract.js';
import { isTimeoutError, OperationAborted, race, type Operation, type StackRunner } from './operation.js';
import { runGraph } from './scheduler.js';

/** At most this many failed resources are named in a stack's status reason; the rest are counted. */
const REASON_NAMES = 10;

/**
 * Heat's stack CHECK of one stack (top-level or nested): every resource's
 * `check` runs, at most `op.concurrency` at once and in no particular order
 * (a check reads, it creates nothing another depends on). A failure does not
 * stop the others, as Heat aggregates them. Only statuses change: a
 * resource's data and properties are left as stored. A nested stack is
 * checked by its owner's plug-in, through NestedStacks.check.
 *
 * `begin`: write the stack's CHECK_IN_PROGRESS first (a nested stack; the
 * engine has already done so for a top-level one). Re-running after a
 * restart is harmless: each resource's status is simply written again.
 * Returns the failures as `name: reason`; throws only when the operation is
 * aborted (timeout, stop, cancel), which the engine records as for any operation.
 */
export async function checkStack(runner: StackRunner, op: Operation, stack: StackRow, begin: boolean): Promise<string[]> {
  if (begin) await runner.stackStatus(op, stack, 'CHECK', 'IN_PROGRESS', 'Stack CHECK started');
  const rows = await stackStore.resources(runner.state.db, stack.id);
  const byName = new Map(rows.map((r) => [r.name, r]));
  const failures: string[] = [];
  const independent = new Map(rows.map((r) => [r.name, new Set<string>()]));
  const err = await runGraph(independent, op.concurrency, op.signal, async (name) => {
    const failed = await checkOne(runner, op, stack, byName.get(name)!);
    if (failed !== undefined) failures.push(`${name}: ${failed}`);
  });
  if (err) throw err;
  failures.sort();
  if (failures.length === 0) {
    await runner.stackStatus(op, stack, 'CHECK', 'COMPLETE', 'Stack CHECK completed successfully');
  } else {
    await runner.stackStatus(op, stack, 'CHECK', 'FAILED', `Resource CHECK failed: ${listFailures(failures)}`);
  }
  return failures;
}

/** The first failures, and how many more: a group of a thousand members must not make a status reason of a thousand lines. */
export function listFailures(failures: string[]): string {
  const more = failures.length > REASON_NAMES ? ` (and ${failures.length - REASON_NAMES} more)` : '';
  return `${failures.slice(0, REASON_NAMES).join('; ')}${more}`;
}

/** One resource: CHECK_IN_PROGRESS, then CHECK_COMPLETE or CHECK_FAILED. Returns the failure's reason, if any. */
async function checkOne(runner: StackRunner, op: Operation, stack: StackRow, row: ResourceRow): Promise<string | undefined> {
  const state = runner.state;
  await runner.write(op, stack, row.name, { status: 'CHECK_IN_PROGRESS', status_reason: 'Stack CHECK started' });
  let reason: string;
  try {
    const plugin = state.maybePlugin(row.type);
    if (!plugin) throw new ResourceFailure(`resource type ${row.type} is not implemented by this ospd`);
    // A resource that was never created (or whose create stored nothing) has nothing to check, and is not as the template says.
    const data = state.openData(row);
    if (data === undefined) throw new ResourceFailure(`resource ${row.name} not created yet`);
    if (!plugin.check) {
      await runner.write(op, stack, row.name, { status: 'CHECK_COMPLETE', status_reason: 'no check for this type' });
      return undefined;
    }
    const ctx = runner.context(op, stack, row.name, plugin, undefined, row.type);
    await race(plugin.check(ctx, data), ctx.signal);
    await runner.write(op, stack, row.name, { status: 'CHECK_COMPLETE', status_reason: 'state changed' });
    return undefined;
  } catch (e) {
    if (e instanceof OperationAborted) throw e;
    if (isTimeoutError(e)) reason = `check timed out after ${Math.round((state.maybePlugin(row.type)?.timeoutMs ?? 0) / 1000)} s`;
    else if (e instanceof ResourceFailure || isOspError(e)) reason = e.message;
    else {
      reason = (e as Error)?.message ?? String(e);
      state.log.error({ err: e, stack: stack.path, resource: row.name }, 'resource check failed unexpectedly');
    }
  }
  await runner.write(op, stack, row.name, { status: 'CHECK_FAILED', status_reason: reason });
  return reason;
}
