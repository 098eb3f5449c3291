import type { Queryable } from './db.js';

/** One stored metric sample (raw) or per-minute average; `vals` is the JSON object of values. */
export interface SampleRow {
  tsMs: number;
  vals: string;
}

export interface MinuteRow {
  vals: string;
  samples: number;
}

/**
 * All SQL about node telemetry: latest inventory (facts), availability, and
 * metric samples (raw, then per-minute averages). Every method takes the
 * connection or transaction to use.
 */
export const telemetryStore = {
  async putFacts(q: Queryable, nodeUuid: string, factsJson: string, updatedAt: string): Promise<void> {
    await q.run(
      `INSERT INTO node_inventory (node_uuid, facts, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (node_uuid) DO UPDATE SET facts = excluded.facts, updated_at = excluded.updated_at`,
      [nodeUuid, factsJson, updatedAt],
    );
  },

  async facts(q: Queryable, nodeUuid: string): Promise<{ facts: string; updatedAt: string } | undefined> {
    const r = await q.get<{ facts: string; updated_at: string }>('SELECT facts, updated_at FROM node_inventory WHERE node_uuid = ?', [nodeUuid]);
    return r && { facts: r.facts, updatedAt: r.updated_at };
  },

  /** Every stored inventory, by node uuid (facts as JSON text). */
  async allFacts(q: Queryable): Promise<Map<string, string>> {
    const rows = await q.all<{ node_uuid: string; facts: string }>('SELECT node_uuid, facts FROM node_inventory');
    return new Map(rows.map((r) => [r.node_uuid, r.facts]));
  },

  async availability(q: Queryable, nodeUuid: string): Promise<{ online: boolean; changedAt: string } | undefined> {
    const r = await q.get<{ online: number; changed_at: string }>('SELECT online, changed_at FROM node_availability WHERE node_uuid = ?', [nodeUuid]);
    return r && { online: r.online === 1, changedAt: r.changed_at };
  },

  async putAvailability(q: Queryable, nodeUuid: string, online: boolean, changedAt: string): Promise<void> {
    await q.run(
      `INSERT INTO node_availability (node_uuid, online, changed_at) VALUES (?, ?, ?)
       ON CONFLICT (node_uuid) DO UPDATE SET online = excluded.online, changed_at = excluded.changed_at`,
      [nodeUuid, online ? 1 : 0, changedAt],
    );
  },

  async insertRaw(q: Queryable, nodeUuid: string, tsMs: number, valsJson: string): Promise<void> {
    await q.run('INSERT INTO node_metrics_raw (node_uuid, ts_ms, vals) VALUES (?, ?, ?)', [nodeUuid, tsMs, valsJson]);
  },

  /** Raw samples at or after sinceMs, newest first, at most `limit`. */
  async rawSince(q: Queryable, nodeUuid: string, sinceMs: number, limit: number): Promise<SampleRow[]> {
    const rows = await q.all<{ ts_ms: number; vals: string }>(
      'SELECT ts_ms, vals FROM node_metrics_raw WHERE node_uuid = ? AND ts_ms >= ? ORDER BY ts_ms DESC LIMIT ?', [nodeUuid, sinceMs, limit]);
    return rows.map((r) => ({ tsMs: r.ts_ms, vals: r.vals }));
  },

  /** Per-minute averages starting at or after sinceMs, newest first, at most `limit`. */
  async minutesSince(q: Queryable, nodeUuid: string, sinceMs: number, limit: number): Promise<SampleRow[]> {
    const rows = await q.all<{ minute_start_ms: number; vals: string }>(
      'SELECT minute_start_ms, vals FROM node_metrics_minute WHERE node_uuid = ? AND minute_start_ms >= ? ORDER BY minute_start_ms DESC LIMIT ?',
      [nodeUuid, sinceMs, limit]);
    return rows.map((r) => ({ tsMs: r.minute_start_ms, vals: r.vals }));
  },

  /** Nodes that have raw samples older than beforeMs. */
  async nodesWithRawBefore(q: Queryable, beforeMs: number): Promise<string[]> {
    return (await q.all<{ node_uuid: string }>('SELECT DISTINCT node_uuid FROM node_metrics_raw WHERE ts_ms < ?', [beforeMs])).map((r) => r.node_uuid);
  },

  async rawBefore(q: Queryable, nodeUuid: string, beforeMs: number): Promise<SampleRow[]> {
    const rows = await q.all<{ ts_ms: number; vals: string }>('SELECT ts_ms, vals FROM node_metrics_raw WHERE node_uuid = ? AND ts_ms < ?', [nodeUuid, beforeMs]);
    return rows.map((r) => ({ tsMs: r.ts_ms, vals: r.vals }));
  },

  async minute(q: Queryable, nodeUuid: string, minuteStartMs: number): Promise<MinuteRow | undefined> {
    return q.get<MinuteRow>('SELECT vals, samples FROM node_metrics_minute WHERE node_uuid = ? AND minute_start_ms = ?', [nodeUuid, minuteStartMs]);
  },

  async putMinute(q: Queryable, nodeUuid: string, minuteStartMs: number, m: MinuteRow): Promise<void> {
    await q.run(
      `INSERT INTO node_metrics_minute (node_uuid, minute_start_ms, vals, samples) VALUES (?, ?, ?, ?)
       ON CONFLICT (node_uuid, minute_start_ms) DO UPDATE SET vals = excluded.vals, samples = excluded.samples`,
      [nodeUuid, minuteStartMs, m.vals, m.samples],
    );
  },

  /** Returns how many rows were deleted. */
  async deleteRawBefore(q: Queryable, nodeUuid: string, beforeMs: number): Promise<number> {
    return (await q.run('DELETE FROM node_metrics_raw WHERE node_uuid = ? AND ts_ms < ?', [nodeUuid, beforeMs])).changes;
  },

  /** Every node's per-minute averages older than beforeMs; returns how many rows were deleted. */
  async deleteMinutesBefore(q: Queryable, beforeMs: number): Promise<number> {
    return (await q.run('DELETE FROM node_metrics_minute WHERE minute_start_ms < ?', [beforeMs])).changes;
  },
};
