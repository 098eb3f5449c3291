import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAsync, type MqttClient } from 'mqtt';
import { InMemoryAuthenticator } from '../../server/telemetry/auth.js';
import { TelemetryBroker } from '../../server/telemetry/broker.js';
import { mayReceive } from '../../server/telemetry/acl.js';
import { waitFor } from '../harness/wait.js';
import { grantedQos } from './helpers.js';

/**
 * Every agent tries every forbidden operation; afterwards we check that no
 * forbidden message reached the bus and no client received a message the
 * policy does not let it see. Real MQTT clients (mqtt.js) over TCP.
 */
const NODES = ['node-1', 'node-2', 'node-3'];
const tokens = Object.fromEntries(NODES.map((n) => [n, `t-${n}-${Math.random().toString(36).slice(2)}`]));
const readerPw = `r-${Math.random().toString(36).slice(2)}`;


describe('MQTT ACL matrix', () => {
  const auth = new InMemoryAuthenticator().addReader('reader', readerPw);
  for (const n of NODES) auth.addAgent(n, tokens[n]);
  const broker = new TelemetryBroker({ authenticator: auth, plain: { host: '127.0.0.1', port: 0 } });
  const busSeen: { topic: string; payload: string }[] = [];
  const clients: MqttClient[] = [];
  let url = '';

  const login = async (username: string, password: string, extra: Parameters<typeof connectAsync>[1] = {}) => {
    const c = await connectAsync(url, { username, password, reconnectPeriod: 0, connectTimeout: 3000, clientId: `${username}-${Math.random().toString(36).slice(2, 8)}`, ...extra });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    await broker.start();
    url = `mqtt://127.0.0.1:${broker.ports().plain}`;
    await broker.subscribe('#', (topic, payload) => busSeen.push({ topic, payload: payload.toString() }));
    // Retained state of every node exists before anyone tries to read it.
    for (const n of NODES) {
      const c = await login(n, tokens[n]);
      await c.publishAsync(`osp/nodes/${n}/facts`, JSON.stringify({ schema: 'x', secret: `facts-of-${n}` }), { qos: 1, retain: true });
      await c.publishAsync(`osp/nodes/${n}/availability`, 'online', { qos: 1, retain: true });
    }
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await broker.stop();
  });

  it('refuses every unauthorised publish, subscribe, will and identifier; delivers nothing forbidden', async () => {
    let matrix = 0;
    const received = new Map<string, { topic: string; payload: string }[]>();
    const watch = (who: string, c: MqttClient) => {
      received.set(who, []);
      c.on('message', (topic, payload) => received.get(who)!.push({ topic, payload: payload.toString() }));
    };

    const forbiddenFilters = (n: string) => {
      const other = NODES.find((x) => x !== n)!;
      return [`osp/nodes/${other}/#`, `osp/nodes/${other}/facts`, `osp/nodes/${other}/availability`, '#', '+', '+/+/+/+', 'osp/#', 'osp/nodes/+/facts', 'osp/nodes/#', '$SYS/#', 'osp/server/status', 'osp/+/node-1/#'];
    };
    // Subscriptions: each agent on one connection, every forbidden filter must be granted 128.
    for (const n of NODES) {
      const c = await login(n, tokens[n]);
      watch(n, c);
      for (const f of forbiddenFilters(n)) {
        if (f === 'osp/+/node-1/#' && n === 'node-1') continue;
        matrix++;
        expect(await grantedQos(c, f), `${n} subscribe ${f}`).toBe(128);
      }
      expect(await grantedQos(c, `osp/nodes/${n}/#`), `${n} own prefix`).toBe(1);
    }
    const reader = await login('reader', readerPw);
    watch('reader', reader);
    expect(await grantedQos(reader, 'osp/#')).toBe(1);
    expect(await grantedQos(reader, '$SYS/#')).toBe(128);
    matrix++;

    // Publishes: one fresh connection per attempt, because a refused publish may close it.
    const attempt = async (username: string, password: string, topic: string, retain: boolean) => {
      matrix++;
      const marker = `forbidden-${matrix}`;
      const c = await login(username, password);
      // A refused publish closes the connection (MQTT 3.1.1 has no negative PUBACK).
      const closed = new Promise<void>((r) => c.once('close', () => r()));
      await Promise.race([c.publishAsync(topic, marker, { qos: 1, retain }).catch(() => undefined), closed, new Promise((r) => setTimeout(r, 1000))]);
      c.end(true);
    };
    for (const n of NODES) {
      const others = NODES.filter((x) => x !== n);
      for (const o of others) {
        for (const ch of ['availability', 'facts', 'metrics', 'events']) {
          await attempt(n, tokens[n], `osp/nodes/${o}/${ch}`, false);
          await attempt(n, tokens[n], `osp/nodes/${o}/${ch}`, true);
        }
      }
      for (const t of ['osp/server/status', 'osp/stacks/s1/events', '$SYS/broker/x', `osp/nodes/${n}/other`, `osp/nodes/${n}/facts/extra`, `osp/nodes/${n}`, 'osp/nodes', 'other/topic']) {
        await attempt(n, tokens[n], t, true);
      }
    }
    for (const t of ['osp/nodes/node-1/metrics', 'osp/nodes/node-1/availability', 'osp/server/status', 'osp/reader']) await attempt('reader', readerPw, t, true);

    // Wills on another node's topic and wildcard/slash identifiers are refused at CONNECT.
    for (const n of NODES) {
      const other = NODES.find((x) => x !== n)!;
      matrix++;
      await expect(login(n, tokens[n], { will: { topic: `osp/nodes/${other}/availability`, payload: Buffer.from('forbidden-will'), qos: 1, retain: true } })).rejects.toThrow(/Not authorized/i);
      for (const bad of [`${n}+`, `${n}#`, `a/${n}`]) {
        matrix++;
        await expect(login(n, tokens[n], { clientId: bad })).rejects.toThrow(/Identifier rejected/i);
      }
    }
    matrix++;
    await expect(login('reader', readerPw, { will: { topic: 'osp/nodes/node-1/availability', payload: Buffer.from('forbidden-will'), qos: 1, retain: true } })).rejects.toThrow(/Not authorized/i);
    matrix++;
    await expect(login('node+1', 'x', { clientId: 'plain-id' })).rejects.toThrow(/Bad username|Not authorized/i);

    // Control: legitimate traffic flows and reaches the right receivers.
    for (const n of NODES) {
      const c = await login(n, tokens[n]);
      await c.publishAsync(`osp/nodes/${n}/metrics`, JSON.stringify({ ts: Date.now(), load1: 1 }), { qos: 1 });
    }
    await waitFor('every node and the reader to receive the metrics', () =>
      received.get('reader')!.filter((m) => m.topic.endsWith('/metrics')).length >= NODES.length && NODES.every((n) => received.get(n)!.some((m) => m.topic.endsWith('/metrics'))),
    { timeoutMs: 5000, intervalMs: 50 });
    for (const n of NODES) expect(received.get(n)!.some((m) => m.topic === `osp/nodes/${n}/metrics`), `${n} gets its own messages`).toBe(true);
    expect(received.get('reader')!.filter((m) => m.topic.endsWith('/facts'))).toHaveLength(NODES.length);

    // Verdict.
    const forbiddenOnBus = busSeen.filter((m) => m.payload.startsWith('forbidden'));
    let unauthorisedDeliveries = 0;
    for (const [who, msgs] of received) {
      const identity = who === 'reader' ? ({ kind: 'reader', name: who } as const) : ({ kind: 'agent', node: who } as const);
      unauthorisedDeliveries += msgs.filter((m) => !mayReceive(identity, m.topic) || m.payload.startsWith('forbidden')).length;
      for (const m of msgs) if (who !== 'reader') expect(m.topic.startsWith(`osp/nodes/${who}/`), `${who} received ${m.topic}`).toBe(true);
    }
    console.log(JSON.stringify({ aclMatrixCases: matrix, forbiddenOnBus: forbiddenOnBus.length, unauthorisedDeliveries }));
    expect(matrix).toBeGreaterThan(100);
    expect(forbiddenOnBus).toEqual([]);
    expect(unauthorisedDeliveries).toBe(0);
  });
});
