import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { InMemoryAuthenticator } from '../../server/telemetry/auth.js';
import { TelemetryBroker } from '../../server/telemetry/broker.js';
import { TelemetryIngest } from '../../server/telemetry/ingest.js';
import { FileRetainedStore } from '../../server/telemetry/retained-store.js';
import { MetricsRegistry, NodeMetricsCache } from '../../server/telemetry/prometheus.js';
import { TelemetryPublisher } from '../../agent/telemetry/publisher.js';
import { HostMetricsCollector } from '../../agent/telemetry/metrics.js';
import { collectInventory } from '../../agent/inventory/index.js';
import { waitFor } from '../harness/wait.js';
import { makePki, mosquittoSub, RecordingSink, tempDir, type SubProcess, type TestPki } from './helpers.js';

// Secrets are generated per run; they exist only in this process and in the
// 0600 options file mosquitto_sub reads.
const agentToken = `tok-${Math.random().toString(36).slice(2)}`;
const readerPassword = `pw-${Math.random().toString(36).slice(2)}`;

describe('telemetry broker with real clients (mosquitto_sub, mqtt.js)', () => {
  const dir = tempDir('mqtt-broker');
  let pki: TestPki;
  const auth = new InMemoryAuthenticator().addAgent('node-a', agentToken).addReader('grafana', readerPassword);
  const sink = new RecordingSink();
  const registry = new MetricsRegistry();
  const nodeMetrics = new NodeMetricsCache();
  let broker: TelemetryBroker;
  let ingest: TelemetryIngest;
  let publisher: TelemetryPublisher;
  const subs: SubProcess[] = [];
  const retainedPath = () => join(dir.path, 'retained.json');

  const makeBroker = (plainPort = 0, tlsPort = 0) =>
    new TelemetryBroker({
      authenticator: auth,
      plain: { host: '127.0.0.1', port: plainPort },
      tls: { host: '127.0.0.1', port: tlsPort, certPem: pki.certPem, keyPem: pki.keyPem },
      retained: new FileRetainedStore(retainedPath(), 20),
      registry,
    });

  beforeAll(async () => {
    pki = makePki(dir.path);
    broker = makeBroker();
    await broker.start();
    ingest = new TelemetryIngest({ bus: broker, sink, nodeMetrics, registry });
    await ingest.start();
    registry.addCollector(nodeMetrics);
    publisher = new TelemetryPublisher({
      brokerUrl: `mqtts://127.0.0.1:${broker.ports().tls}`,
      caPem: pki.caPem,
      node: 'node-a',
      token: agentToken,
      collectFacts: () => collectInventory(),
      collectMetrics: () => new HostMetricsCollector().collect(),
      metricsIntervalMs: 200,
      reconnectPeriodMs: 200,
    });
    await publisher.start();
  });

  afterAll(async () => {
    for (const s of subs) s.stop();
    await publisher?.stop().catch(() => undefined);
    await ingest?.stop().catch(() => undefined);
    await broker?.stop().catch(() => undefined);
    dir.remove();
  });

  for (const listener of ['tls', 'plain'] as const) {
    it(`mosquitto_sub as a reader on the ${listener} listener sees retained availability, facts and live metrics`, async () => {
      const sub = mosquittoSub(dir.path, {
        port: broker.ports()[listener], username: 'grafana', password: readerPassword, topic: 'osp/#', caFile: listener === 'tls' ? pki.caFile : undefined,
      });
      subs.push(sub);
      await sub.waitFor((l) => l.some((x) => x.startsWith('osp/nodes/node-a/metrics ')) && l.some((x) => x === 'osp/nodes/node-a/availability online'), 15_000);
      const facts = sub.lines.find((l) => l.startsWith('osp/nodes/node-a/facts '));
      expect(facts, 'retained facts delivered').toBeDefined();
      const inv = JSON.parse(facts!.slice('osp/nodes/node-a/facts '.length)) as Record<string, unknown>;
      expect(inv.schema).toBe('osp.inventory/v1');
      expect(inv).toHaveProperty('cpu.count');
      expect(sub.lines).toContain('osp/server/status online');
      const metrics = JSON.parse(sub.lines.find((l) => l.startsWith('osp/nodes/node-a/metrics '))!.split(' ').slice(1).join(' ')) as Record<string, number>;
      expect(typeof metrics.ts).toBe('number');
      expect(metrics.memory_total_bytes).toBeGreaterThan(0);
      sub.stop();
    });
  }

  it('ingest hands facts, metrics and availability to the sink and exposes node metrics to Prometheus', async () => {
    await waitFor('ingest', () => sink.facts.has('node-a') && sink.metrics.length > 2, { timeoutMs: 10_000 });
    expect(sink.availability).toContainEqual({ node: 'node-a', online: true });
    expect(sink.facts.get('node-a')?.schema).toBe('osp.inventory/v1');
    const text = registry.render();
    expect(text).toMatch(/^memory_total_bytes\{node="node-a"\} \d+$/m);
    expect(text).toMatch(/^ospd_mqtt_clients \d+$/m);
    expect(text).toMatch(/^ospd_telemetry_ingested_total\{channel="metrics"\} \d+$/m);
  });

  it('refuses anonymous logins, bad passwords and a plain listener off loopback', async () => {
    const port = broker.ports().plain;
    await expect(connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow(/Not authorized|Bad username/i);
    await expect(connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'node-a', password: 'wrong', reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow(/Bad username|Not authorized/i);
    expect(() => new TelemetryBroker({ authenticator: auth, plain: { host: '0.0.0.0', port: 0 } })).toThrow(/mqtt plain listener host "0.0.0.0" is not a loopback address/);
  });

  it('keeps retained state across a restart; server status offline after a clean stop, agent availability offline until it reconnects', async () => {
    const { plain, tls } = broker.ports();
    await ingest.stop();
    await broker.stop();
    // While ospd is down the retained file says what a restarted broker will serve.
    const saved = JSON.parse((await import('node:fs')).readFileSync(retainedPath(), 'utf8')) as { topic: string; payloadBase64: string }[];
    const byTopic = Object.fromEntries(saved.map((r) => [r.topic, Buffer.from(r.payloadBase64, 'base64').toString()]));
    expect(byTopic['osp/server/status']).toBe('offline');
    expect(byTopic['osp/nodes/node-a/availability']).toBe('offline');
    expect(JSON.parse(byTopic['osp/nodes/node-a/facts']).schema).toBe('osp.inventory/v1');

    broker = makeBroker(plain, tls);
    await broker.start();
    const sub = mosquittoSub(dir.path, { port: plain, username: 'grafana', password: readerPassword, topic: 'osp/#' });
    subs.push(sub);
    await sub.waitFor((l) => l.includes('osp/server/status online') && l.some((x) => x.startsWith('osp/nodes/node-a/facts ')), 10_000);
    // The publisher reconnects by itself and flips availability back.
    await sub.waitFor((l) => l.includes('osp/nodes/node-a/availability online'), 15_000);
    sub.stop();
  });
});
