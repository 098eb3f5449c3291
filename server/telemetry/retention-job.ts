import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { telemetryStore } from '../store/telemetry.js';
import { mergeMinute, planRetention, validateRetention, type MinuteAverage, type RetentionPolicy } from './retention.js';

const MINUTE_MS = 60_000;

export interface RetentionJobOptions {
  db: Database;
  policy: RetentionPolicy;
  intervalMs?: number;
  logger?: Logger;
  now?: () => number;
}

/**
 * Applies the retention policy on a timer: raw samples that left the raw
 * window become per-minute averages (merged with any average already stored
 * for that minute), and everything past the maximum age is deleted. One
 * transaction per node keeps each node's series consistent.
 */
export class MetricsRetentionJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: RetentionJobOptions) {
    validateRetention(opts.policy);
    this.log = opts.logger ?? silentLogger();
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.runOnce().catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'metrics retention failed'));
    }, this.opts.intervalMs ?? MINUTE_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass; returns how many raw rows were folded and how many rows expired. */
  async runOnce(): Promise<{ folded: number; expired: number }> {
    const { db, policy } = this.opts;
    const nowMs = this.now();
    // Same boundary planRetention uses: whole minutes only.
    const boundaryMs = Math.floor((nowMs - policy.rawWindowMs) / MINUTE_MS) * MINUTE_MS;
    const nodes = await telemetryStore.nodesWithRawBefore(db, boundaryMs);
    let folded = 0;
    let expired = 0;
    for (const uuid of nodes) {
      await db.transaction(async (tx) => {
        const rows = await telemetryStore.rawBefore(tx, uuid, boundaryMs);
        const plan = planRetention(rows.map((r) => ({ tsMs: r.tsMs, values: JSON.parse(r.vals) as Record<string, number> })), nowMs, policy);
        for (const m of plan.downsampled) {
          const prev = await telemetryStore.minute(tx, uuid, m.minuteStartMs);
          const merged: MinuteAverage = prev ? mergeMinute({ minuteStartMs: m.minuteStartMs, values: JSON.parse(prev.vals) as Record<string, number>, samples: prev.samples }, m) : m;
          await telemetryStore.putMinute(tx, uuid, m.minuteStartMs, { vals: JSON.stringify(merged.values), samples: merged.samples });
        }
        folded += await telemetryStore.deleteRawBefore(tx, uuid, plan.rawBeforeMs);
      });
    }
    const expireBeforeMs = nowMs - policy.maxAgeMs;
    expired += await telemetryStore.deleteMinutesBefore(db, expireBeforeMs);
    if (folded || expired) this.log.info({ folded, expired }, 'metrics retention applied');
    return { folded, expired };
  }
}
