import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import { ALL_NODES_FILTER, parseNodeTopic } from '../../common/topics.js';
import { OSPD_EVENT_SOURCE } from '../nodes/live-events.js';
import type { InProcessBus } from './broker.js';
import type { MetricsRegistry, NodeMetricsCache } from './prometheus.js';

/** Where ingested telemetry goes; ospd implements it over the store. */
export interface TelemetrySink {
  /** Latest inventory of the node (replaces the previous one). */
  saveFacts(node: string, facts: Record<string, unknown>): Promise<void>;
  /** One metrics sample; `tsMs` is the agent's timestamp (Unix milliseconds). */
  saveMetrics(node: string, tsMs: number, values: Record<string, number>): Promise<void>;
  /** Called on every availability message; the sink writes an event when it changes. */
  setAvailability(node: string, online: boolean): Promise<void>;
  /** Optional: agent events (boot, config applied, progress). */
  saveEvent?(node: string, event: Record<string, unknown>): Promise<void>;
}

export interface TelemetryIngestOptions {
  bus: InProcessBus;
  sink: TelemetrySink;
  nodeMetrics?: NodeMetricsCache;
  registry?: MetricsRegistry;
  logger?: Logger;
  maxPayloadBytes?: number;
  /** Malformed payloads are summarised in one log line per interval. */
  logIntervalMs?: number;
}

type Verdict<T> = { ok: true; value: T } | { ok: false; reason: string };

function parseObject(payload: Buffer): Verdict<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'payload is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'payload is not a JSON object' };
  return { ok: true, value: value as Record<string, unknown> };
}

/** Metrics: a flat object of finite numbers with a numeric `ts` (Unix ms). */
export function validateMetrics(payload: Buffer): Verdict<{ tsMs: number; values: Record<string, number> }> {
  const obj = parseObject(payload);
  if (!obj.ok) return obj;
  const ts = obj.value.ts;
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts <= 0) return { ok: false, reason: `field ts is ${JSON.stringify(ts)}; expected Unix milliseconds` };
  const values: Record<string, number> = {};
  for (const [k, v] of Object.entries(obj.value)) {
    if (k === 'ts') continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) return { ok: false, reason: `field ${JSON.stringify(k)} is ${JSON.stringify(v)}; expected a finite number` };
    values[k] = v;
  }
  return { ok: true, value: { tsMs: ts, values } };
}

export function validateFacts(payload: Buffer): Verdict<Record<string, unknown>> {
  const obj = parseObject(payload);
  if (!obj.ok) return obj;
  if (typeof obj.value.schema !== 'string' && typeof obj.value.schema !== 'number') {
    return { ok: false, reason: `field schema is ${JSON.stringify(obj.value.schema)}; expected a schema identifier` };
  }
  return obj;
}

/**
 * Subscribes in-process to every node channel and hands validated payloads to
 * the sink. Malformed payloads are dropped and counted per node; a failing
 * sink is logged and counted, never allowed to throw into the broker.
 */
export class TelemetryIngest {
  private unsubscribe: (() => Promise<void>) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  private readonly maxPayloadBytes: number;
  private readonly malformed = new Map<string, number>();
  private pendingLog = new Map<string, { count: number; lastReason: string }>();
  private readonly counters;

  constructor(private readonly opts: TelemetryIngestOptions) {
    this.log = opts.logger ?? silentLogger();
    this.maxPayloadBytes = opts.maxPayloadBytes ?? 256 * 1024;
    const r = opts.registry;
    this.counters = r
      ? {
          ingested: r.counter('ospd_telemetry_ingested_total', 'Telemetry messages handed to the store, by channel'),
          malformed: r.counter('ospd_telemetry_malformed_total', 'Telemetry messages dropped as malformed, by node'),
          sinkErrors: r.counter('ospd_telemetry_sink_errors_total', 'Telemetry messages the store failed to save'),
        }
      : null;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.opts.bus.subscribe(ALL_NODES_FILTER, (topic, payload) => this.handle(topic, payload));
    this.timer = setInterval(() => this.flushLog(), this.opts.logIntervalMs ?? 60_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.flushLog();
    await this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Malformed messages dropped so far, per node. */
  malformedCounts(): Record<string, number> {
    return Object.fromEntries(this.malformed);
  }

  private handle(topic: string, payload: Buffer): void {
    const parsed = parseNodeTopic(topic);
    if (!parsed) return;
    const { node, channel } = parsed;
    if (payload.length > this.maxPayloadBytes) return this.drop(node, `payload is ${payload.length} bytes; expected at most ${this.maxPayloadBytes}`);
    switch (channel) {
      case 'availability': {
        const text = payload.toString('utf8');
        if (text !== 'online' && text !== 'offline') return this.drop(node, `availability is ${JSON.stringify(text.slice(0, 40))}; expected online or offline`);
        return this.save(node, channel, this.opts.sink.setAvailability(node, text === 'online'));
      }
      case 'facts': {
        const v = validateFacts(payload);
        if (!v.ok) return this.drop(node, v.reason);
        return this.save(node, channel, this.opts.sink.saveFacts(node, v.value));
      }
      case 'metrics': {
        const v = validateMetrics(payload);
        if (!v.ok) return this.drop(node, v.reason);
        this.opts.nodeMetrics?.update(node, v.value.values);
        return this.save(node, channel, this.opts.sink.saveMetrics(node, v.value.tsMs, v.value.values));
      }
      case 'events': {
        if (!this.opts.sink.saveEvent) return;
        const v = parseObject(payload);
        if (!v.ok) return this.drop(node, v.reason);
        // ospd's own events (state changes, progress) are stored where they happen. An agent
        // claiming this source only keeps its event out of the history; it cannot add to it.
        if (v.value.source === OSPD_EVENT_SOURCE) return;
        return this.save(node, channel, this.opts.sink.saveEvent(node, v.value));
      }
    }
  }

  private save(node: string, channel: string, p: Promise<void>): void {
    p.then(
      () => this.counters?.ingested.inc({ channel }),
      (e: unknown) => {
        this.counters?.sinkErrors.inc({ channel });
        this.log.error({ node, channel, err: e instanceof Error ? e.message : String(e) }, 'telemetry store failed');
      },
    );
  }

  private drop(node: string, reason: string): void {
    this.malformed.set(node, (this.malformed.get(node) ?? 0) + 1);
    this.counters?.malformed.inc({ node });
    const p = this.pendingLog.get(node);
    if (p) {
      p.count++;
      p.lastReason = reason;
    } else {
      this.pendingLog.set(node, { count: 1, lastReason: reason });
    }
  }

  private flushLog(): void {
    for (const [node, { count, lastReason }] of this.pendingLog) {
      this.log.warn({ node, dropped: count, lastReason }, 'malformed telemetry dropped');
    }
    this.pendingLog = new Map();
  }
}
