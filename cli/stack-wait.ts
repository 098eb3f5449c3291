import { HeatStatus, type Stack, type StackServiceClient } from '../proto/gen/osp/v1/stack.js';
import { ServerError, type Connection } from './client.js';

export const POLL_INTERVAL_MS = 1000;

/** `CREATE_COMPLETE` from the wire enum. */
export function statusName(s: HeatStatus): string {
  return (HeatStatus[s] ?? 'UNSPECIFIED').replace(/^HEAT_STATUS_/, '');
}

export const inProgress = (s: Stack) => statusName(s.status).endsWith('_IN_PROGRESS');

/**
 * Polls the stack until it leaves *_IN_PROGRESS, telling the progress on
 * stderr (stdout keeps the answer): on a terminal one line rewritten in
 * place, otherwise a line per change. A stack that ends *_FAILED is an error
 * (exit 1); a deleted stack that is gone is the end of its deletion.
 */
export async function waitForStack(
  c: Connection, stacks: StackServiceClient, name: string,
  opts: { gone?: boolean; intervalMs?: number; progress?: (s: Stack) => Promise<string> } = {},
): Promise<Stack | undefined> {
  const tty = process.stderr.isTTY === true;
  let lastLine = '';
  for (;;) {
    let s: Stack;
    try {
      s = (await c.call(stacks, stacks.getStack, { stack: name })).stack!;
    } catch (e) {
      if (opts.gone && e instanceof ServerError && e.code === 'STACK_NOT_FOUND') {
        if (tty && lastLine) process.stderr.write('\n');
        process.stderr.write(`stack ${name}: deleted\n`);
        return undefined;
      }
      throw e;
    }
    // A caller's own progress (the overcloud's nodes and steps) is best effort: the status line goes on without it.
    const extra = opts.progress ? await opts.progress(s).catch(() => '') : '';
    const line = `stack ${name}: ${statusName(s.status)}: ${s.resourcesComplete}/${s.resourcesTotal} resources complete${extra ? `; ${extra}` : ''}${s.statusReason ? ` (${s.statusReason})` : ''}`;
    if (line !== lastLine) process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    lastLine = line;
    if (!inProgress(s)) {
      if (tty) process.stderr.write('\n');
      if (statusName(s.status).endsWith('_FAILED')) {
        throw new ServerError(`stack ${name}: ${statusName(s.status)}: ${s.statusReason || 'no reason given'} (see ospctl stack failures ${name} and stack event list ${name})`, 'FAILED_PRECONDITION');
      }
      return s;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? POLL_INTERVAL_MS));
  }
}
