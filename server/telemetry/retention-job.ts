import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
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
    const nodes = await db.all<{ node_uuid: string }>('SELECT DISTINCT node_uuid FROM node_metrics_raw WHERE ts_ms < ?', [boundaryMs]);
    let folded = 0;
    let expired = 0;
    for (const { node_uuid: uuid } of nodes) {
      await db.transaction(async (tx) => {
        const rows = await tx.all<{ ts_ms: number; vals: string }>('SELECT ts_ms, vals FROM node_metrics_raw WHERE node_uuid = ? AND ts_ms < ?', [uuid, boundaryMs]);
        const plan = planRetention(rows.map((r) => ({ tsMs: r.ts_ms, values: JSON.parse(r.vals) as Record<string, number> })), nowMs, policy);
        for (const m of plan.downsampled) {
          const prev = await tx.get<{ vals: string; samples: number }>('SELECT vals, samples FROM node_metrics_minute WHERE node_uuid = ? AND minute_start_ms = ?', [uuid, m.minuteStartMs]);
          const merged: MinuteAverage = prev ? mergeMinute({ minuteStartMs: m.minuteStartMs, values: JSON.parse(prev.vals) as Record<string, number>, samples: prev.samples }, m) : m;
          await tx.run(
            `INSERT INTO node_metrics_minute (node_uuid, minute_start_ms, vals, samples) VALUES (?, ?, ?, ?)
             ON CONFLICT (node_uuid, minute_start_ms) DO UPDATE SET vals = excluded.vals, samples = excluded.samples`,
            [uuid, m.minuteStartMs, JSON.stringify(merged.values), merged.samples],
          );
        }
        const del = await tx.run('DELETE FROM node_metrics_raw WHERE node_uuid = ? AND ts_ms < ?', [uuid, plan.rawBeforeMs]);
        folded += del.changes;
      });
    }
    const expireBeforeMs = nowMs - policy.maxAgeMs;
    expired += (await db.run('DELETE FROM node_metrics_minute WHERE minute_start_ms < ?', [expireBeforeMs])).changes;
    if (folded || expired) this.log.info({ folded, expired }, 'metrics retention applied');
    return { folded, expired };
  }
}
