import type { Command } from 'commander';
import { ServerError, type Connection } from '../client.js';
import { InspectionServiceClient } from '../../proto/gen/osp/v1/ramdisk.js';
import { NodeServiceClient, type Node } from '../../proto/gen/osp/v1/node.js';
import { renderList, renderOne, UsageError, type Column } from '../output.js';
import { withOutput, type Ctx, type OutputOpts } from '../command-kit.js';

export const COLUMNS: Column<Node>[] = [
  { key: 'uuid', label: 'UUID', get: (n) => n.uuid },
  { key: 'name', label: 'Name', get: (n) => n.name },
  { key: 'power_state', label: 'Power State', get: (n) => n.powerState },
  { key: 'provision_state', label: 'Provisioning State', get: (n) => n.provisionState },
  { key: 'last_error', label: 'Last Error', get: (n) => n.lastError },
];

const POLL_MS = 1000;

/** Polls the node until it leaves the busy states; the server's wait timeout bounds how long that takes. */
export async function waitWhile(c: Connection, id: string, busy: string[], maxWaitMs: number, onPoll?: (n: Node) => Promise<void>): Promise<Node> {
  const nodes = c.client(NodeServiceClient);
  const until = Date.now() + maxWaitMs;
  for (;;) {
    const n = await c.call(nodes, nodes.getNode, { id });
    await onPoll?.(n);
    if (!busy.includes(n.provisionState)) return n;
    if (Date.now() > until) throw new ServerError(`node ${n.name} still '${n.provisionState}' after ${Math.round(maxWaitMs / 1000)} s of waiting`, 'DEADLINE_EXCEEDED');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Seconds on the command line, milliseconds inside (converted once, here). */
export const DEFAULT_MAX_WAIT_MS = 3600_000;

export function maxWait(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--max-wait ${v}: expected a whole number of seconds of at least 1`);
  return Number(v) * 1000;
}

/** Adds inspect, introspect, provide and abort to `ospctl node`. */
export function addNodeInspectCommands(node: Command, ctx: Ctx): void {
  const client = async () => {
    const c = await ctx.connect();
    return { c, insp: c.client(InspectionServiceClient) };
  };
  const finish = (n: Node, expected: string, what: string) => {
    if (n.provisionState !== expected) {
      throw new ServerError(`node ${n.name}: ${what} ended in '${n.provisionState}': ${n.lastError}`, 'NODE_STATE_INVALID');
    }
  };

  withOutput(node.command('inspect').description('PXE boot the ramdisk, collect the inventory, power off: manageable → inspecting → inspect wait → manageable'))
    .argument('<node>', 'uuid or name')
    .option('--wait', 'wait until inspection ends; exit 1 unless the node is manageable again')
    .option('--max-wait <seconds>', 'give up waiting after this many seconds (default 3600)', maxWait)
    .action(async (id: string, o: OutputOpts & { wait?: boolean; maxWait?: number }) => {
      const { c, insp } = await client();
      let n = await c.call(insp, insp.inspectNode, { node: id });
      if (o.wait) n = await waitWhile(c, n.uuid, ['inspecting', 'inspect wait'], o.maxWait ?? DEFAULT_MAX_WAIT_MS);
      ctx.out(renderOne(n, COLUMNS, o.format, o.column));
      if (o.wait) finish(n, 'manageable', 'inspection');
    });

  withOutput(node.command('introspect').description('inspect every manageable node, a few at a time'))
    .option('--all-manageable', 'every node in manageable (required: the batch never guesses)')
    .option('--provide', 'clean each node inspection leaves manageable, so it becomes available')
    .option('--concurrency <n>', 'nodes booting at once (server default 4)', (v: string) => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--concurrency ${v}: expected a whole number of at least 1`);
      return Number(v);
    })
    .action(async (o: OutputOpts & { allManageable?: boolean; provide?: boolean; concurrency?: number }) => {
      if (!o.allManageable) throw new UsageError('introspect: pass --all-manageable (the only batch selection so far)');
      const { c, insp } = await client();
      const r = await c.call(insp, insp.introspectManageable, { provide: !!o.provide, concurrency: o.concurrency ?? 0 });
      ctx.out(renderList(r.nodes, COLUMNS, o.format, o.column));
    });

  withOutput(node.command('provide').description('clean (metadata erase in the ramdisk) and make available: manageable → cleaning → clean wait → available'))
    .argument('<node>', 'uuid or name')
    .option('--wait', 'wait until cleaning ends; exit 1 unless the node is available')
    .option('--max-wait <seconds>', 'give up waiting after this many seconds (default 3600)', maxWait)
    .action(async (id: string, o: OutputOpts & { wait?: boolean; maxWait?: number }) => {
      const { c, insp } = await client();
      let n = await c.call(insp, insp.provideNode, { node: id });
      if (o.wait) n = await waitWhile(c, n.uuid, ['cleaning', 'clean wait'], o.maxWait ?? DEFAULT_MAX_WAIT_MS);
      ctx.out(renderOne(n, COLUMNS, o.format, o.column));
      if (o.wait) finish(n, 'available', 'cleaning');
    });

  withOutput(node.command('abort').description('stop waiting for the ramdisk (inspect wait, clean wait, wait call-back) → the failed state'))
    .argument('<node>', 'uuid or name')
    .action(async (id: string, o: OutputOpts) => {
      const { c, insp } = await client();
      ctx.out(renderOne(await c.call(insp, insp.abortNode, { node: id }), COLUMNS, o.format, o.column));
    });
}
