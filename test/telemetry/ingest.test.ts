import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { connectAsync, type MqttClient } from 'mqtt';
import { createLogger } from '../../common/logging.js';
import { InMemoryAuthenticator } from '../../server/telemetry/auth.js';
import { TelemetryBroker } from '../../server/telemetry/broker.js';
import { TelemetryIngest } from '../../server/telemetry/ingest.js';
import { MetricsRegistry } from '../../server/telemetry/prometheus.js';
import { waitFor } from '../harness/wait.js';
import { RecordingSink } from './helpers.js';

const token = `t-${Math.random().toString(36).slice(2)}`;

describe('ingest drops malformed payloads, counts them per node and logs once per interval', () => {
  const logLines: Record<string, unknown>[] = [];
  const dest = new Writable({ write(chunk, _enc, cb) { for (const l of chunk.toString().split('\n')) if (l) logLines.push(JSON.parse(l)); cb(); } });
  const logger = createLogger({ name: 'ingest-test', level: 'warn', destination: dest });
  const auth = new InMemoryAuthenticator().addAgent('node-m', token);
  const broker = new TelemetryBroker({ authenticator: auth, plain: { host: '127.0.0.1', port: 0 }, maxPayloadBytes: 1024 * 1024 });
  const sink = new RecordingSink();
  const registry = new MetricsRegistry();
  let ingest: TelemetryIngest;
  let agent: MqttClient;

  beforeAll(async () => {
    await broker.start();
    ingest = new TelemetryIngest({ bus: broker, sink, registry, logger, logIntervalMs: 1500, maxPayloadBytes: 64 * 1024 });
    await ingest.start();
    agent = await connectAsync(`mqtt://127.0.0.1:${broker.ports().plain}`, { username: 'node-m', password: token, clientId: 'node-m', reconnectPeriod: 0 });
  });

  afterAll(async () => {
    await agent?.endAsync(true);
    await ingest?.stop();
    await broker.stop();
  });

  it('keeps ingesting good messages between bad ones', async () => {
    const bad = [
      ['metrics', 'not json'],
      ['metrics', '{"ts":"yesterday","load1":1}'],
      ['metrics', '{"ts":1700000000000,"load1":"high"}'],
      ['metrics', JSON.stringify({ ts: 1700000000000, pad: 'x'.repeat(100 * 1024) })],
      ['facts', '{"cpu":{}}'],
      ['availability', 'maybe'],
    ];
    for (const [ch, payload] of bad) {
      await agent.publishAsync(`osp/nodes/node-m/${ch}`, payload, { qos: 1 });
      await agent.publishAsync('osp/nodes/node-m/metrics', JSON.stringify({ ts: Date.now(), load1: 1 }), { qos: 1 });
    }
    await waitFor('ingest', () => sink.metrics.length === bad.length && ingest.malformedCounts()['node-m'] === bad.length, { timeoutMs: 5000 });
    // Drops are summarised per interval, not logged per message; a slow run may straddle two intervals.
    const summaries = () => logLines.filter((l) => l.msg === 'malformed telemetry dropped');
    const total = () => summaries().reduce((n, l) => n + Number(l.dropped), 0);
    await waitFor('summary log covering every drop', () => total() === bad.length, { timeoutMs: 8000, detail: () => JSON.stringify(summaries()) });
    expect(summaries().length).toBeLessThanOrEqual(2);
    for (const l of summaries()) expect(l).toMatchObject({ node: 'node-m' });
    expect(registry.render()).toContain(`ospd_telemetry_malformed_total{node="node-m"} ${bad.length}`);
    expect(sink.facts.size).toBe(0);
    expect(sink.availability).toEqual([]);
  });
});
