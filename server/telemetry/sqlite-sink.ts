import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import { OspError } from '../../common/errors.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import { telemetryStore } from '../store/telemetry.js';
import type { TelemetrySink } from './ingest.js';

export interface StoredSample {
  nodeName: string;
  tsMs: number;
  values: Record<string, number>;
  resolution: 'raw' | 'minute';
}

export interface NodeTelemetryState {
  facts?: Record<string, unknown>;
  factsUpdatedAt?: string;
  availability: 'online' | 'offline' | 'unknown';
  availabilityChangedAt?: string;
}

export type SampleListener = (s: StoredSample) => void;

/** Name → uuid lookups are cached briefly: ingest resolves a node per message. */
const NODE_CACHE_MS = 30_000;
const DEFAULT_QUERY_LIMIT = 10_000;

/**
 * Telemetry in the SQLite store: what ingest writes (latest facts, the
 * availability with an event on change, metric samples) and what the API
 * reads back. Messages for names that are not registered nodes are refused
 * (the broker only lets agents with a node token publish, so this is a node
 * deleted while its agent was still connected).
 */
export class SqliteTelemetrySink implements TelemetrySink {
  private readonly uuids = new Map<string, { uuid: string; atMs: number }>();
  private readonly lookups = new Map<string, Promise<string>>();
  private readonly listeners = new Set<SampleListener>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly log: Logger;

  constructor(private readonly db: Database, logger?: Logger) {
    this.log = logger ?? silentLogger();
  }

  /** Called with every sample after it is stored; returns the unsubscribe function. */
  onSample(fn: SampleListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Waits for writes already handed to the sink, so the store can close after it. */
  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  private nodeUuid(name: string): Promise<string> {
    const hit = this.uuids.get(name);
    if (hit && Date.now() - hit.atMs < NODE_CACHE_MS) return Promise.resolve(hit.uuid);
    // A burst from one node before its name is cached shares one lookup instead of queueing one per message.
    let p = this.lookups.get(name);
    if (!p) {
      p = this.lookUp(name).finally(() => this.lookups.delete(name));
      this.lookups.set(name, p);
    }
    return p;
  }

  private async lookUp(name: string): Promise<string> {
    const uuid = await nodeStore.uuidByName(this.db, name);
    if (uuid === undefined) {
      this.uuids.delete(name);
      throw new OspError('NODE_NOT_FOUND', `node '${name}' not found`, { node: name });
    }
    this.uuids.set(name, { uuid, atMs: Date.now() });
    return uuid;
  }

  saveFacts(node: string, facts: Record<string, unknown>): Promise<void> {
    return this.track(this.saveFactsNow(node, facts));
  }

  private async saveFactsNow(node: string, facts: Record<string, unknown>): Promise<void> {
    const uuid = await this.nodeUuid(node);
    await telemetryStore.putFacts(this.db, uuid, JSON.stringify(facts), new Date().toISOString());
  }

  saveMetrics(node: string, tsMs: number, values: Record<string, number>): Promise<void> {
    return this.track(this.saveMetricsNow(node, tsMs, values));
  }

  private async saveMetricsNow(node: string, tsMs: number, values: Record<string, number>): Promise<void> {
    const uuid = await this.nodeUuid(node);
    await telemetryStore.insertRaw(this.db, uuid, Math.round(tsMs), JSON.stringify(values));
    const sample: StoredSample = { nodeName: node, tsMs, values, resolution: 'raw' };
    for (const fn of this.listeners) {
      try {
        fn(sample);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'metrics listener failed');
      }
    }
  }

  setAvailability(node: string, online: boolean): Promise<void> {
    return this.track(this.setAvailabilityNow(node, online));
  }

  private async setAvailabilityNow(node: string, online: boolean): Promise<void> {
    const uuid = await this.nodeUuid(node);
    const changed = await this.db.transaction(async (tx) => {
      const cur = await telemetryStore.availability(tx, uuid);
      if (cur && cur.online === online) return false;
      const now = new Date().toISOString();
      await telemetryStore.putAvailability(tx, uuid, online, now);
      await nodeStore.appendEvent(tx, {
        nodeUuid: uuid, type: 'availability', actor: 'agent',
        message: `agent ${online ? 'online' : 'offline'}`, data: { online },
      }, now);
      return true;
    });
    if (changed) this.log.info({ node, online }, 'node availability changed');
  }

  saveEvent(node: string, event: Record<string, unknown>): Promise<void> {
    return this.track(this.saveEventNow(node, event));
  }

  private async saveEventNow(node: string, event: Record<string, unknown>): Promise<void> {
    const uuid = await this.nodeUuid(node);
    const type = typeof event.type === 'string' && /^[a-z0-9_.-]{1,64}$/i.test(event.type) ? event.type : 'agent-event';
    const message = typeof event.message === 'string' ? event.message.slice(0, 1000) : type;
    await nodeStore.appendEvent(this.db, { nodeUuid: uuid, type: `agent.${type}`, actor: 'agent', message, data: event });
  }

  /** Latest facts and availability of a node (by uuid). */
  async state(nodeUuid: string): Promise<NodeTelemetryState> {
    const inv = await telemetryStore.facts(this.db, nodeUuid);
    const av = await telemetryStore.availability(this.db, nodeUuid);
    return {
      facts: inv ? (JSON.parse(inv.facts) as Record<string, unknown>) : undefined,
      factsUpdatedAt: inv?.updatedAt,
      availability: av ? (av.online ? 'online' : 'offline') : 'unknown',
      availabilityChangedAt: av?.changedAt,
    };
  }

  /**
   * Samples of one node since `sinceMs`, oldest first: per-minute averages
   * for the span that has left the raw window, then raw samples. `names`
   * narrows the values; `limit` keeps the newest.
   */
  async query(node: { uuid: string; name: string }, sinceMs: number, names: string[] = [], limit = DEFAULT_QUERY_LIMIT): Promise<StoredSample[]> {
    const pick = (text: string): Record<string, number> => {
      const all = JSON.parse(text) as Record<string, number>;
      if (!names.length) return all;
      return Object.fromEntries(names.filter((n) => n in all).map((n) => [n, all[n]]));
    };
    const minutes = await telemetryStore.minutesSince(this.db, node.uuid, sinceMs, limit);
    const raw = await telemetryStore.rawSince(this.db, node.uuid, sinceMs, limit);
    const out: StoredSample[] = [
      ...minutes.map((m) => ({ nodeName: node.name, tsMs: m.tsMs, values: pick(m.vals), resolution: 'minute' as const })),
      ...raw.map((r) => ({ nodeName: node.name, tsMs: r.tsMs, values: pick(r.vals), resolution: 'raw' as const })),
    ];
    out.sort((a, b) => a.tsMs - b.tsMs);
    return out.slice(Math.max(0, out.length - limit));
  }
}
