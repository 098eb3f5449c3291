import type { Queryable } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import type { ProvisionState } from '../nodes/model.js';

/**
 * What the inspection flow reads back from node_events. The wait deadline and
 * the agent contacts are written as ordinary event rows (the provision event
 * entering the wait state carries `deadline`), so a restarted ospd finds them
 * without a table of its own.
 */
export interface WaitEntry {
  /** node_events.id of the transition into the wait state; later rows belong to this wait. */
  eventId: number;
  state: ProvisionState;
  startedAt: string;
  deadlineMs: number;
  /** The timeout the wait was given (0 when the event predates it). */
  timeoutMs: number;
}

export interface WaitFacts {
  lookups: number;
  streams: number;
  inventory: boolean;
  lastProgress?: string;
}

export const RAMDISK_EVENT = {
  lookup: 'ramdisk-lookup',
  stream: 'ramdisk-stream',
  inventory: 'inventory',
  progress: 'ramdisk-progress',
  discovery: 'discovery',
} as const;

/** The most recent entry into `state` for the node, with the deadline stored beside it. */
export async function currentWait(q: Queryable, nodeUuid: string, state: ProvisionState): Promise<WaitEntry | undefined> {
  const row = await nodeStore.lastTransitionInto(q, nodeUuid, state);
  if (!row) return undefined;
  const data = JSON.parse(row.data || '{}') as { deadline?: string; timeoutMs?: number };
  const deadlineMs = data.deadline ? Date.parse(data.deadline) : NaN;
  return { eventId: row.id, state, startedAt: row.time, deadlineMs: Number.isFinite(deadlineMs) ? deadlineMs : Date.parse(row.time), timeoutMs: Number(data.timeoutMs ?? 0) };
}

/** What the ramdisk did since the wait began. */
export async function waitFacts(q: Queryable, nodeUuid: string, sinceEventId: number): Promise<WaitFacts> {
  const rows = await nodeStore.eventsSince(q, nodeUuid, sinceEventId,
    [RAMDISK_EVENT.lookup, RAMDISK_EVENT.stream, RAMDISK_EVENT.inventory, RAMDISK_EVENT.progress]);
  const facts: WaitFacts = { lookups: 0, streams: 0, inventory: false };
  for (const r of rows) {
    if (r.type === RAMDISK_EVENT.lookup) facts.lookups++;
    else if (r.type === RAMDISK_EVENT.stream) facts.streams++;
    else if (r.type === RAMDISK_EVENT.inventory) facts.inventory = true;
    else facts.lastProgress = r.message;
  }
  return facts;
}
