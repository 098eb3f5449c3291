import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Database } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { SqliteTelemetrySink } from '../../server/telemetry/sqlite-sink.js';
import { MetricsRetentionJob } from '../../server/telemetry/retention-job.js';
import { MqttAccounts } from '../../server/telemetry/accounts.js';
import { resolveConfig } from '../../server/config.js';
import { OspError } from '../../common/errors.js';

/** The SQLite side of telemetry against a real database file (no mocks: SQLite is the peer). */
describe('telemetry store', () => {
  let dir: string;
  let db: Database;
  let sink: SqliteTelemetrySink;
  const node = { uuid: '11111111-2222-4333-8444-555555555555', name: 'web-0' };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'osp-tele-store-'));
    db = await Database.open(path.join(dir, 'ospd.sqlite'));
    await migrate(db);
    const now = new Date().toISOString();
    await db.run('INSERT INTO nodes (uuid, name, driver, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', [node.uuid, node.name, 'fake', now, now]);
    sink = new SqliteTelemetrySink(db);
  });

  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes an availability event only when the value changes', async () => {
    for (const online of [true, true, false, false, true]) await sink.setAvailability('web-0', online);
    const events = await db.all<{ message: string }>("SELECT message FROM node_events WHERE type = 'availability' ORDER BY id");
    expect(events.map((e) => e.message)).toEqual(['agent online', 'agent offline', 'agent online']);
    expect((await sink.state(node.uuid)).availability).toBe('online');
  });

  it('keeps only the latest facts and refuses unknown nodes', async () => {
    await sink.saveFacts('web-0', { schema: 'osp.inventory/v1', hostname: 'a' });
    await sink.saveFacts('web-0', { schema: 'osp.inventory/v1', hostname: 'b' });
    expect((await sink.state(node.uuid)).facts).toEqual({ schema: 'osp.inventory/v1', hostname: 'b' });
    await expect(sink.saveFacts('ghost', { schema: 'x' })).rejects.toSatisfy((e: unknown) => e instanceof OspError && e.code === 'NODE_NOT_FOUND');
  });

  it('retention folds samples outside the raw window into minute averages and expires old ones', async () => {
    const nowMs = Date.UTC(2025, 0, 1, 12, 0, 0);
    const minute = 60_000;
    // Two samples in a minute 20 min ago (averaged), one 3 h ago (expired), two recent (kept raw).
    const rows: [number, number][] = [
      [nowMs - 20 * minute + 1000, 10], [nowMs - 20 * minute + 31_000, 30],
      [nowMs - 180 * minute, 99], [nowMs - 2 * minute, 5], [nowMs - 1000, 7],
    ];
    for (const [ts, v] of rows) await sink.saveMetrics('web-0', ts, { load1: v });
    const job = new MetricsRetentionJob({ db, policy: { rawWindowMs: 10 * minute, maxAgeMs: 60 * minute }, now: () => nowMs });
    const r = await job.runOnce();
    expect(r.folded).toBe(3);
    const samples = await sink.query(node, 0);
    expect(samples.map((s) => [s.resolution, s.values.load1])).toEqual([['minute', 20], ['raw', 5], ['raw', 7]]);
    expect(samples[0].tsMs).toBe(Math.floor((nowMs - 20 * minute) / minute) * minute);
    // A late sample for the same minute is merged by weight, not overwritten.
    await sink.saveMetrics('web-0', nowMs - 20 * minute + 50_000, { load1: 80 });
    await job.runOnce();
    expect((await sink.query(node, 0))[0].values.load1).toBeCloseTo((10 + 30 + 80) / 3);
    // Later, past maxAge, the averages expire too.
    const later = new MetricsRetentionJob({ db, policy: { rawWindowMs: 10 * minute, maxAgeMs: 60 * minute }, now: () => nowMs + 120 * minute });
    expect((await later.runOnce()).expired).toBe(1);
    expect((await sink.query(node, 0)).every((s) => s.resolution === 'minute')).toBe(true);
  });

  it('query narrows names and keeps the newest when limited', async () => {
    for (let i = 1; i <= 5; i++) await sink.saveMetrics('web-0', 1000 * i, { a: i, b: -i });
    const s = await sink.query(node, 0, ['a'], 2);
    expect(s.map((x) => x.values)).toEqual([{ a: 4 }, { a: 5 }]);
  });

  it('reader accounts: hashed, shown once, checked, refused on a node name; agents go to the token check', async () => {
    const seen: string[] = [];
    const accounts = new MqttAccounts(db, {
      authenticate: async (name, token) => {
        seen.push(name);
        if (name === 'web-0' && token === 'node-token') return { name };
        throw new OspError('AGENT_TOKEN_INVALID');
      },
    });
    const { password } = await accounts.create('telegraf', 'reader', 'test');
    const stored = await db.get<{ password_hash: string }>('SELECT password_hash FROM mqtt_users');
    expect(stored!.password_hash).not.toContain(password);
    expect(await accounts.authenticate('telegraf', Buffer.from(password))).toEqual({ kind: 'reader', name: 'telegraf' });
    expect(await accounts.authenticate('telegraf', Buffer.from(`${password}x`))).toBeNull();
    expect(await accounts.authenticate('web-0', Buffer.from('node-token'))).toEqual({ kind: 'agent', node: 'web-0' });
    expect(await accounts.authenticate('web-0', Buffer.from('wrong'))).toBeNull();
    expect(seen).toEqual(['web-0', 'web-0']);
    await expect(accounts.create('web-0', 'reader', 'test')).rejects.toThrow(/node name/);
    await expect(accounts.create('a/b', 'reader', 'test')).rejects.toThrow(/name: "a\/b"/);
    await expect(accounts.create('ok', 'writer', 'test')).rejects.toThrow(/role: "writer": expected one of reader/);
    await expect(accounts.create('telegraf', 'reader', 'test')).rejects.toThrow(/already exists/);
    expect(await accounts.delete('telegraf', 'test')).toBe(true);
    expect(await accounts.authenticate('telegraf', Buffer.from(password))).toBeNull();
  });
});

describe('telemetry config keys', () => {
  it('defaults and overrides', () => {
    const d = resolveConfig({}, {}).telemetry;
    expect(d.mqttListen).toEqual({ host: '0.0.0.0', port: 8883 });
    expect(d.mqttPlainListen).toEqual({ host: '127.0.0.1', port: 1883 });
    const c = resolveConfig({ 'mqtt-listen': 'off', 'metrics-raw-window-ms': 120000 }, { 'mqtt-plain-listen': '[::1]:1884', 'metrics-retention-ms': '600000' }).telemetry;
    expect(c).toEqual({ mqttListen: null, mqttPlainListen: { host: '::1', port: 1884 }, mqttWsListen: null, metricsRawWindowMs: 120000, metricsRetentionMs: 600000 });
  });

  it('refuses a non-loopback plain listener and retention shorter than the raw window, naming the key', () => {
    expect(() => resolveConfig({ 'mqtt-plain-listen': '0.0.0.0:1883' }, {})).toThrow(/mqtt-plain-listen: "0.0.0.0:1883" is not valid: expected a loopback/);
    expect(() => resolveConfig({ 'metrics-raw-window-ms': 7200000, 'metrics-retention-ms': 3600000 }, {})).toThrow(/metrics-retention-ms: 3600000 .*at least metrics-raw-window-ms/);
    expect(() => resolveConfig({ 'mqtt-listen': 'nowhere' }, {})).toThrow(/mqtt-listen: "nowhere"/);
  });
});
