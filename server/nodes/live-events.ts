import type { NodeRecord, ProvisionState } from './model.js';

/**
 * What ospd itself tells MQTT consumers about a node on
 * `osp/nodes/<node>/events` (ARCHITECTURE.md): every state change, the
 * ramdisk's progress, and warnings that do not fail the node. The store's
 * event history stays the record; this is the live feed a dashboard draws.
 */
export interface NodeLiveEvent {
  type: 'provision' | 'progress' | 'warning';
  state: ProvisionState;
  message: string;
  /** 0–100, progress only. */
  percent?: number;
  /** The rest: the transition's action and source state, the command kind, throughput. */
  detail?: Record<string, unknown>;
}

/** Where live events go (telemetry/node-events.ts publishes them); best effort, never throws. */
export interface NodeEventSink {
  publish(n: Pick<NodeRecord, 'name' | 'uuid'>, e: NodeLiveEvent): void;
}

/** `source` of the events ospd publishes: ingest skips them, they are in the store already. */
export const OSPD_EVENT_SOURCE = 'ospd';
