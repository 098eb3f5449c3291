import { StackServiceClient, type StackResource } from '../proto/gen/osp/v1/stack.js';
import type { Connection } from './client.js';
import type { Ctx } from './command-kit.js';

// Outputs with every node's deploy_stdout can outgrow grpc-js's 4 MiB default.
export const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** ospd answers at most this many items a page, whatever limit is asked. */
const PAGE_LIMIT = 1000;

/** The connection and a StackService client for `stack` and `overcloud` commands. */
export async function connectStacks(ctx: Ctx): Promise<{ c: Connection; stacks: StackServiceClient }> {
  const c = await ctx.connect();
  return { c, stacks: new StackServiceClient(c.cfg.server, c.credentials(), { 'grpc.max_receive_message_length': MAX_ANSWER_BYTES }) };
}

/** Every page of a list, bounded at 1000 pages. */
export async function allPages<T>(fetch: (limit: number, marker: string) => Promise<{ items: T[]; nextMarker: string }>): Promise<T[]> {
  const all: T[] = [];
  let marker = '';
  for (let page = 0; page < 1000; page++) {
    const r = await fetch(PAGE_LIMIT, marker);
    all.push(...r.items);
    if (!r.nextMarker) break;
    marker = r.nextMarker;
  }
  return all;
}

/** Every resource of a stack, nested stacks `nestedDepth` levels down included. */
export function allStackResources(c: Connection, stacks: StackServiceClient, stack: string, nestedDepth: number): Promise<StackResource[]> {
  return allPages(async (limit, marker) => {
    const r = await c.call(stacks, stacks.listStackResources, { stack, nestedDepth, limit, marker });
    return { items: r.resources, nextMarker: r.nextMarker };
  });
}
