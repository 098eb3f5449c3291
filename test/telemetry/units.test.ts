import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { metricKey, parseMetricKey, parseNodeTopic, nodeTopic } from '../../common/topics.js';
import { identifierProblem, topicProblem, DEFAULT_TOPIC_LIMITS, mayPublish, maySubscribe } from '../../server/telemetry/acl.js';
import { MetricsRegistry, NodeMetricsCache, PROMETHEUS_CONTENT_TYPE } from '../../server/telemetry/prometheus.js';
import { downsampleToMinutes, mergeMinute, planRetention, type MetricSample } from '../../server/telemetry/retention.js';
import { validateFacts, validateMetrics } from '../../server/telemetry/ingest.js';
import { MessageSpool } from '../../agent/telemetry/spool.js';
import { InMemoryAuthenticator } from '../../server/telemetry/auth.js';
import { tempDir } from './helpers.js';

describe('topic scheme', () => {
  it('builds and parses node topics and refuses non-DNS-label names', () => {
    expect(nodeTopic('node-1', 'facts')).toBe('osp/nodes/node-1/facts');
    expect(parseNodeTopic('osp/nodes/node-1/metrics')).toEqual({ node: 'node-1', channel: 'metrics' });
    expect(parseNodeTopic('osp/nodes/node-1/other')).toBeNull();
    expect(parseNodeTopic('osp/nodes/a/b/facts')).toBeNull();
    expect(() => nodeTopic('bad/name', 'facts')).toThrow(/node name "bad\/name" is not a DNS label/);
  });

  it('round-trips labelled metric keys, escapes included', () => {
    for (const labels of [{}, { mount: '/' }, { device: 'eth0', mode: 'a"b\\c\nd' }] as Record<string, string>[]) {
      const key = metricKey('filesystem_free_bytes', labels);
      expect(parseMetricKey(key)).toEqual({ name: 'filesystem_free_bytes', labels });
    }
    expect(metricKey('x', { mount: '/var' })).toBe('x{mount="/var"}');
    for (const bad of ['1abc', 'a{b}', 'a{b="c"', 'a{b="c"x}', 'a b']) expect(parseMetricKey(bad), bad).toBeNull();
  });
});

describe('ACL primitives', () => {
  it('names the problem with identifiers and topics', () => {
    expect(identifierProblem('client id', 'a+b')).toMatch(/client id "a\+b" contains '\+', '#' or '\/'/);
    expect(identifierProblem('username', 'ok-name')).toBeNull();
    expect(topicProblem('', DEFAULT_TOPIC_LIMITS, false)).toMatch(/empty.*4\.7\.3/);
    expect(topicProblem('a/'.repeat(20) + 'a', DEFAULT_TOPIC_LIMITS, false)).toMatch(/21 levels; expected at most 16/);
    expect(topicProblem('osp/\ufffd', DEFAULT_TOPIC_LIMITS, false)).toMatch(/UTF-8/);
    expect(topicProblem('osp/+', DEFAULT_TOPIC_LIMITS, false)).toMatch(/wildcard/);
    expect(topicProblem('osp/+', DEFAULT_TOPIC_LIMITS, true)).toBeNull();
  });

  it('lets an agent publish only its four channels and subscribe only below its prefix', () => {
    const a = { kind: 'agent', node: 'n1' } as const;
    expect(['availability', 'facts', 'metrics', 'events'].every((c) => mayPublish(a, `osp/nodes/n1/${c}`))).toBe(true);
    expect(mayPublish(a, 'osp/nodes/n2/facts')).toBe(false);
    expect(mayPublish({ kind: 'reader', name: 'r' }, 'osp/nodes/n1/facts')).toBe(false);
    expect(maySubscribe(a, 'osp/nodes/n1/#')).toBe(true);
    expect(maySubscribe(a, 'osp/nodes/+/facts')).toBe(false);
    expect(maySubscribe(a, 'osp/nodes/n1')).toBe(false);
  });

  it('in-memory authenticator accepts the right secret only', async () => {
    const auth = new InMemoryAuthenticator().addAgent('n1', 'secret');
    expect(await auth.authenticate('n1', Buffer.from('secret'))).toEqual({ kind: 'agent', node: 'n1' });
    expect(await auth.authenticate('n1', Buffer.from('secreT'))).toBeNull();
    expect(await auth.authenticate('nobody', Buffer.from('secret'))).toBeNull();
  });
});

describe('Prometheus exposition', () => {
  it('renders counters, gauges and node metrics in text format 0.0.4', () => {
    const r = new MetricsRegistry();
    const c = r.counter('ospd_grpc_calls_total', 'gRPC calls\nby method');
    c.inc({ method: 'List"Nodes' });
    c.inc({ method: 'List"Nodes' }, 2);
    r.gauge('ospd_mqtt_clients', 'clients').set({}, 7);
    const cache = new NodeMetricsCache();
    cache.update('n1', { load1: 0.5, 'filesystem_free_bytes{mount="/"}': 1e9, 'bad key': 1 });
    cache.update('n2', { load1: Infinity });
    r.addCollector(cache);
    const text = r.render();
    expect(PROMETHEUS_CONTENT_TYPE).toContain('version=0.0.4');
    expect(text).toContain('# HELP ospd_grpc_calls_total gRPC calls\\nby method\n# TYPE ospd_grpc_calls_total counter\nospd_grpc_calls_total{method="List\\"Nodes"} 3\n');
    expect(text).toContain('ospd_mqtt_clients 7\n');
    expect(text).toContain('# TYPE load1 gauge\nload1{node="n1"} 0.5\nload1{node="n2"} +Inf\n');
    expect(text).toContain('filesystem_free_bytes{mount="/",node="n1"} 1000000000\n');
    expect(text).not.toContain('bad key');
    expect(text.endsWith('\n')).toBe(true);
    expect(() => c.inc({}, -1)).toThrow(/negative/);
    expect(() => r.counter('1bad', 'x')).toThrow(/metric name "1bad" is invalid/);
  });
});

describe('retention and downsampling', () => {
  const min = 60_000;
  it('keeps the raw window, averages older samples per minute, expires the oldest', () => {
    const now = 100 * min;
    const samples: MetricSample[] = [
      { tsMs: 10 * min + 1000, values: { a: 1 } }, // expired (max age 80 min)
      { tsMs: 30 * min + 1000, values: { a: 2, b: 10 } },
      { tsMs: 30 * min + 5000, values: { a: 4 } },
      { tsMs: 31 * min, values: { a: 6 } },
      { tsMs: 95 * min, values: { a: 8 } },
    ];
    const plan = planRetention(samples, now, { rawWindowMs: 10 * min, maxAgeMs: 80 * min });
    expect(plan.keepRaw).toEqual([samples[4]]);
    expect(plan.downsampled).toEqual([
      { minuteStartMs: 30 * min, values: { a: 3, b: 10 }, samples: 2 },
      { minuteStartMs: 31 * min, values: { a: 6 }, samples: 1 },
    ]);
    expect(plan.expireBeforeMs).toBe(20 * min);
    expect(() => planRetention([], now, { rawWindowMs: 10, maxAgeMs: 5 })).toThrow(/maxAgeMs is 5; expected at least rawWindowMs/);
  });
  it('merges minutes weighted by sample count', () => {
    const [m] = downsampleToMinutes([{ tsMs: 0, values: { a: 2 } }]);
    expect(mergeMinute(m, { minuteStartMs: 0, values: { a: 5, b: 1 }, samples: 2 })).toEqual({ minuteStartMs: 0, values: { a: 4, b: 1 }, samples: 3 });
  });
});

describe('ingest payload validation', () => {
  it('accepts flat numbers with ts and rejects the rest with the field named', () => {
    expect(validateMetrics(Buffer.from('{"ts":1700000000000,"load1":0.1}'))).toEqual({ ok: true, value: { tsMs: 1700000000000, values: { load1: 0.1 } } });
    expect(validateMetrics(Buffer.from('not json'))).toEqual({ ok: false, reason: 'payload is not JSON' });
    expect(validateMetrics(Buffer.from('[1]'))).toMatchObject({ ok: false });
    expect(validateMetrics(Buffer.from('{"load1":1}'))).toEqual({ ok: false, reason: 'field ts is undefined; expected Unix milliseconds' });
    expect(validateMetrics(Buffer.from('{"ts":1,"load1":"high"}'))).toEqual({ ok: false, reason: 'field "load1" is "high"; expected a finite number' });
    expect(validateFacts(Buffer.from('{"cpu":{}}'))).toMatchObject({ ok: false, reason: expect.stringContaining('schema') });
  });
});

describe('agent spool', () => {
  it('keeps order across memory and file, caps the file and counts drops', async () => {
    const dir = tempDir('spool');
    try {
      const spool = new MessageSpool({ memoryMessages: 3, filePath: join(dir.path, 's.jsonl'), fileMaxBytes: 40 });
      for (let i = 0; i < 10; i++) await spool.push(`m${i}`);
      // 3 in memory; file lines are 5 bytes ("m3"\n), so m3..m9 take 35 of 40 bytes.
      expect(spool.dropped).toBe(0);
      // "m10"\n is 6 bytes: 41 > 40, so m10..m13 are dropped.
      for (let i = 10; i < 14; i++) await spool.push(`m${i}`);
      expect(spool.dropped).toBe(4);
      const drained = await spool.drain();
      expect(drained).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
      expect(spool.length).toBe(0);
      expect(await spool.fileSizeBytes()).toBe(0);
    } finally {
      dir.remove();
    }
  });
});
