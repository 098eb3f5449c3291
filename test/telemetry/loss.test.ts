import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { InMemoryAuthenticator } from '../../server/telemetry/auth.js';
import { TelemetryBroker } from '../../server/telemetry/broker.js';
import { TelemetryIngest } from '../../server/telemetry/ingest.js';
import { FileRetainedStore } from '../../server/telemetry/retained-store.js';
import { TelemetryPublisher } from '../../agent/telemetry/publisher.js';
import { waitFor } from '../harness/wait.js';
import { RecordingSink, tempDir } from './helpers.js';

/**
 * The agent keeps publishing while ospd's broker is down, then every metric
 * spooled meanwhile arrives after the restart. The outage defaults to 3 s to
 * keep the suite short; OSP_TEST_MQTT_OUTAGE_MS=30000 runs the 30 s.
 */
const outageMs = Number(process.env.OSP_TEST_MQTT_OUTAGE_MS ?? 3000);
const token = `t-${Math.random().toString(36).slice(2)}`;

describe('agent publisher across a broker outage', () => {
  const dir = tempDir('mqtt-loss');
  const auth = new InMemoryAuthenticator().addAgent('node-l', token);
  const sink = new RecordingSink();
  let broker: TelemetryBroker | null = null;
  let ingest: TelemetryIngest | null = null;
  let publisher: TelemetryPublisher | null = null;

  const up = async (port: number) => {
    broker = new TelemetryBroker({ authenticator: auth, plain: { host: '127.0.0.1', port }, retained: new FileRetainedStore(join(dir.path, 'retained.json'), 20) });
    await broker.start();
    ingest = new TelemetryIngest({ bus: broker, sink });
    await ingest.start();
  };
  const down = async () => {
    // Broker first: its stop publishes the agents' offline state, which ingest still sees.
    await broker?.stop();
    await ingest?.stop();
  };

  afterAll(async () => {
    await publisher?.stop().catch(() => undefined);
    await down().catch(() => undefined);
    dir.remove();
  });

  it(`spools metrics during a ${outageMs} ms outage and delivers every one in order after restart`, { timeout: outageMs + 60_000 }, async () => {
    await up(0);
    const port = broker!.ports().plain;
    let seq = 0;
    let factsVersion = 1;
    let collectedFactsVersion = 0;
    publisher = new TelemetryPublisher({
      brokerUrl: `mqtt://127.0.0.1:${port}`,
      node: 'node-l',
      token,
      collectFacts: async () => {
        collectedFactsVersion = factsVersion;
        return { schema: 'osp.inventory/v1', version: factsVersion };
      },
      // seq makes each sample identifiable so loss and reordering are visible.
      collectMetrics: async () => ({ ts: Date.now(), seq: ++seq }),
      metricsIntervalMs: 50,
      factsIntervalMs: 100,
      reconnectPeriodMs: 200,
      spool: { memoryMessages: 10, filePath: join(dir.path, 'spool.jsonl'), fileMaxBytes: 1024 * 1024 },
    });
    await publisher.start();
    await waitFor('live metrics', () => sink.metrics.length >= 5, { timeoutMs: 5000 });

    await down();
    expect(sink.availability.at(-1)).toEqual({ node: 'node-l', online: false });
    const seqAtStop = seq;
    // The outage itself: how long the broker stays away is what is under test.
    await new Promise((r) => setTimeout(r, outageMs));
    factsVersion = 2; // facts change while disconnected: only the latest must arrive
    await waitFor('facts version 2 collected while offline', () => collectedFactsVersion === 2, { timeoutMs: 5000 });
    // Timers slip under load, so wait for half the outage's samples rather than sampling once.
    await waitFor('metrics spooled during the outage', () => publisher!.stats.metricsSpooled > outageMs / 50 / 2, { timeoutMs: 15_000 });
    const spooled = publisher.stats.metricsSpooled;
    expect(publisher.stats.metricsDropped).toBe(0);

    await up(port);
    await waitFor('spool drained', () => publisher!.pending === 0 && sink.metrics.some((m) => m.values.seq > seq - 2), { timeoutMs: 15_000 });
    await waitFor('current facts', () => sink.facts.get('node-l')?.version === 2, { timeoutMs: 5000 });
    expect(sink.availability.at(-1)).toEqual({ node: 'node-l', online: true });

    // Every sample from just after the stop up to now arrived, each at least once, in order of first arrival.
    const seen = sink.metrics.map((m) => m.values.seq);
    const firstSeen = [...new Set(seen)];
    const lastSeq = Math.max(...seen);
    const missing: number[] = [];
    for (let s = seqAtStop + 1; s <= lastSeq; s++) if (!seen.includes(s)) missing.push(s);
    const afterStop = firstSeen.filter((s) => s > seqAtStop);
    console.log(JSON.stringify({ outageMs, spooled, replayed: publisher.stats.metricsReplayed, missing: missing.length, dropped: publisher.stats.metricsDropped }));
    expect(missing).toEqual([]);
    expect(afterStop).toEqual([...afterStop].sort((a, b) => a - b));
    expect(publisher.stats.metricsReplayed).toBeGreaterThanOrEqual(spooled);
  });
});
