import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAsync } from 'mqtt';
import { silentLogger } from '../../common/logging.js';
import type { StackEvent } from '../../server/orchestration/engine/contract.js';
import { mayPublish, maySubscribe } from '../../server/telemetry/acl.js';
import { InMemoryAuthenticator } from '../../server/telemetry/auth.js';
import { TelemetryBroker } from '../../server/telemetry/broker.js';
import { MqttStackEvents } from '../../server/telemetry/stack-events.js';
import { mosquittoSub, tempDir, type SubProcess } from './helpers.js';

const agentToken = `tok-${Math.random().toString(36).slice(2)}`;
const readerPassword = `pw-${Math.random().toString(36).slice(2)}`;

describe('stack events on MQTT', () => {
  const dir = tempDir('mqtt-stacks');
  const auth = new InMemoryAuthenticator().addAgent('node-a', agentToken).addReader('grafana', readerPassword);
  const broker = new TelemetryBroker({ authenticator: auth, plain: { host: '127.0.0.1', port: 0 } });
  const listeners = new Set<(e: StackEvent) => void>();
  const events = new MqttStackEvents(broker, { onEvent: (fn) => (listeners.add(fn), () => void listeners.delete(fn)) }, silentLogger());
  const subs: SubProcess[] = [];

  beforeAll(async () => {
    await broker.start();
    await events.start();
  });
  afterAll(async () => {
    for (const s of subs) s.stop();
    await events.stop();
    await broker.stop();
    dir.remove();
  });

  it('publishes each engine event as JSON on the top-level stack topic, not retained; a reader (mosquitto_sub) receives it', async () => {
    const sub = mosquittoSub(dir.path, { port: broker.ports().plain, username: 'grafana', password: readerPassword, topic: 'osp/stacks/#' });
    subs.push(sub);
    const e: StackEvent = {
      id: 7, stack: 'overcloud-Compute-x1', stackPath: 'overcloud/Compute/0', resource: 'deploy', physicalId: 'd-1',
      status: 'CREATE_FAILED', statusReason: 'script exited 3', at: '2026-01-01T00:00:00.000Z',
    };
    // mosquitto_sub subscribes after it connects; publish until it has seen one.
    const timer = setInterval(() => listeners.forEach((l) => l(e)), 100);
    try {
      await sub.waitFor((lines) => lines.length > 0, 10_000);
    } finally {
      clearInterval(timer);
    }
    const [topic, ...rest] = sub.lines[0].split(' ');
    expect(topic).toBe('osp/stacks/overcloud/events');
    expect(JSON.parse(rest.join(' '))).toEqual({
      type: 'stack', stack: 'overcloud-Compute-x1', stack_path: 'overcloud/Compute/0', resource: 'deploy', physical_id: 'd-1',
      status: 'CREATE_FAILED', status_reason: 'script exited 3', at: '2026-01-01T00:00:00.000Z', id: 7,
    });
    // Not retained: a subscriber that comes later gets nothing old.
    const late = mosquittoSub(dir.path, { port: broker.ports().plain, username: 'grafana', password: readerPassword, topic: 'osp/stacks/#' });
    subs.push(late);
    await new Promise((r) => setTimeout(r, 700));
    expect(late.lines).toEqual([]);
  });

  it('only ospd publishes stack events; readers may subscribe, agents may not', async () => {
    const topic = 'osp/stacks/overcloud/events';
    expect(mayPublish({ kind: 'server' }, topic)).toBe(true);
    expect(mayPublish({ kind: 'agent', node: 'node-a' }, topic)).toBe(false);
    expect(mayPublish({ kind: 'reader', name: 'grafana' }, topic)).toBe(false);
    expect(maySubscribe({ kind: 'reader', name: 'grafana' }, 'osp/stacks/#')).toBe(true);
    expect(maySubscribe({ kind: 'agent', node: 'node-a' }, 'osp/stacks/#')).toBe(false);
    // And on the wire: an agent's publish there never reaches a reader.
    const sub = mosquittoSub(dir.path, { port: broker.ports().plain, username: 'grafana', password: readerPassword, topic: 'osp/stacks/forged/#' });
    subs.push(sub);
    const agent = await connectAsync(`mqtt://127.0.0.1:${broker.ports().plain}`, { username: 'node-a', password: agentToken, clientId: 'node-a', reconnectPeriod: 0 });
    try {
      await new Promise((r) => setTimeout(r, 500));
      await agent.publishAsync('osp/stacks/forged/events', '{"type":"stack"}', { qos: 0 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 700));
      expect(sub.lines).toEqual([]);
    } finally {
      await agent.endAsync(true);
    }
  });

  it('does not publish for a stack name that cannot be a topic level', () => {
    let published = 0;
    const bus = { publish: async () => void published++ } as unknown as TelemetryBroker;
    const sink = new MqttStackEvents(bus, { onEvent: () => () => undefined }, silentLogger());
    sink.publish({ id: 1, stack: 'a+b', stackPath: 'a+b', resource: 'r', physicalId: '', status: 'CREATE_COMPLETE', statusReason: '', at: '' });
    sink.publish({ id: 2, stack: 'ok', stackPath: 'ok', resource: 'r', physicalId: '', status: 'CREATE_COMPLETE', statusReason: '', at: '' });
    expect(published).toBe(1);
  });
});
