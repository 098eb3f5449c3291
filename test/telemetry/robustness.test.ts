import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as tcpConnect, type Socket } from 'node:net';
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import { connectAsync, type MqttClient } from 'mqtt';
import { InMemoryAuthenticator } from '../../server/telemetry/auth.js';
import { TelemetryBroker } from '../../server/telemetry/broker.js';
import { waitFor } from '../harness/wait.js';

/**
 * Hostile and broken clients crafted byte by byte with the mqtt-packet
 * encoder; after each, a healthy reader and agent must still round-trip.
 */
// Long enough that a healthy round trip under CI load cannot be mistaken for waiting it out.
const DRAIN_MS = 8_000;
const token = `t-${Math.random().toString(36).slice(2)}`;
const readerPw = `r-${Math.random().toString(36).slice(2)}`;

interface RawClient {
  sock: Socket;
  packets: Packet[];
  closed: Promise<void>;
  isClosed: () => boolean;
}

function raw(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, '127.0.0.1');
    const packets: Packet[] = [];
    const p = mqttParser({ protocolVersion: 4 });
    p.on('packet', (pk) => packets.push(pk));
    p.on('error', () => undefined);
    sock.on('data', (d) => p.parse(d));
    let closed = false;
    const closedP = new Promise<void>((r) => sock.once('close', () => ((closed = true), r())));
    sock.on('error', () => undefined);
    sock.once('connect', () => resolve({ sock, packets, closed: closedP, isClosed: () => closed }));
    sock.once('error', reject);
  });
}

const connectPacket = (username: string, password: string, clientId: string) =>
  generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId, username, password: Buffer.from(password) });


describe('broker robustness against malformed and slow clients', () => {
  const auth = new InMemoryAuthenticator().addAgent('node-1', token).addReader('reader', readerPw);
  const broker = new TelemetryBroker({ authenticator: auth, plain: { host: '127.0.0.1', port: 0 }, drainTimeoutMs: DRAIN_MS, maxPayloadBytes: 64 * 1024 });
  const bus: string[] = [];
  let port = 0;
  let healthyReader: MqttClient;
  let healthyAgent: MqttClient;
  const got: string[] = [];
  const sockets: Socket[] = [];

  const roundTrip = async (label: string) => {
    const marker = `${label}-${Math.random()}`;
    await healthyAgent.publishAsync('osp/nodes/node-1/events', JSON.stringify({ marker }), { qos: 1 });
    await waitFor(`healthy round trip after ${label}`, () => got.some((g) => g.includes(marker)), { timeoutMs: 15_000 });
  };

  const rawAuthed = async (id: string, user = 'node-1', pw = token) => {
    const c = await raw(port);
    sockets.push(c.sock);
    c.sock.write(connectPacket(user, pw, id));
    await waitFor('raw client connected', () => c.packets.some((p) => p.cmd === 'connack' && p.returnCode === 0), { timeoutMs: 15_000 });
    return c;
  };

  beforeAll(async () => {
    await broker.start();
    port = broker.ports().plain;
    await broker.subscribe('osp/#', (topic) => bus.push(topic));
    healthyReader = await connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'reader', password: readerPw, clientId: 'healthy-reader', reconnectPeriod: 0 });
    healthyReader.on('message', (_t, p) => got.push(p.toString()));
    await healthyReader.subscribeAsync('osp/#', { qos: 1 });
    healthyAgent = await connectAsync(`mqtt://127.0.0.1:${port}`, { username: 'node-1', password: token, clientId: 'node-1', reconnectPeriod: 0 });
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await healthyReader?.endAsync(true);
    await healthyAgent?.endAsync(true);
    await broker.stop();
  });

  it('survives garbage, broken CONNECTs, reserved packet types and truncated lengths', async () => {
    const good = connectPacket('node-1', token, 'x1');
    const brokenProtocol = Buffer.from(good);
    brokenProtocol.write('MQTX', 4); // protocol name (MQTT 3.1.1 section 3.1.2.1)
    const cases: Record<string, Buffer> = {
      garbage: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      reservedType0: Buffer.from([0x00, 0x00]),
      reservedType15: Buffer.from([0xf0, 0x00]),
      brokenProtocolName: brokenProtocol,
      badRemainingLength: Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]),
      truncatedConnect: good.subarray(0, good.length - 5),
      publishBeforeConnect: generate({ cmd: 'publish', topic: 'osp/nodes/node-1/facts', payload: 'x', qos: 0, retain: true, dup: false }),
      protocolLevel9: (() => { const b = Buffer.from(good); b[8] = 9; return b; })(),
    };
    for (const [name, bytes] of Object.entries(cases)) {
      const c = await raw(port);
      sockets.push(c.sock);
      c.sock.write(bytes);
      if (name === 'truncatedConnect' || name === 'badRemainingLength') {
        // The broker must have read the partial packet before the half-close; no event tells us it did.
        await new Promise((r) => setTimeout(r, 200));
        c.sock.end();
      }
      await Promise.race([c.closed, new Promise((r) => setTimeout(r, 2000))]);
      expect(c.packets.some((p) => p.cmd === 'connack' && p.returnCode === 0), `${name} never gets a successful CONNACK`).toBe(false);
      c.sock.destroy();
    }
    expect(bus.filter((t) => t === 'osp/nodes/node-1/facts')).toEqual([]);
    await roundTrip('malformed');
  });

  it('closes a connection that declares an oversized packet, before logging in and before buffering its body', async () => {
    // CONNECT (type 1) declaring 200 MiB: Remaining Length as MQTT's variable byte integer (section 2.2.3).
    const varint = (n: number): number[] => { const out: number[] = []; do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; out.push(b); } while (n > 0); return out; };
    const c = await raw(port);
    sockets.push(c.sock);
    c.sock.write(Buffer.from([0x10, ...varint(200 * 1024 * 1024)]));
    c.sock.write(Buffer.alloc(64 * 1024, 0x41));
    // aedes' own connect timeout would wait far longer than this bound.
    await Promise.race([c.closed, new Promise((r) => setTimeout(r, 10_000))]);
    expect(c.isClosed(), 'closed on the header').toBe(true);
    expect(c.packets).toEqual([]);
    await roundTrip('oversized CONNECT');
  });

  it('refuses a 200-level topic, an empty topic, invalid UTF-8 and an oversized payload', async () => {
    const deep = `osp/nodes/node-1/${Array.from({ length: 197 }, () => 'a').join('/')}`;
    const utf8Placeholder = 'osp/nodes/node-1/metrics';
    const invalidUtf8 = generate({ cmd: 'publish', topic: utf8Placeholder, payload: '{}', qos: 1, messageId: 7, retain: false, dup: false });
    // Overwrite "metrics" (inside the topic) with bytes that are not UTF-8 (MQTT 3.1.1 section 1.5.3).
    const at = invalidUtf8.indexOf('metrics');
    invalidUtf8[at] = 0xff;
    invalidUtf8[at + 1] = 0xfe;
    const emptyTopic = Buffer.from(generate({ cmd: 'publish', topic: 'x', payload: 'p', qos: 0, retain: false, dup: false }));
    const cases: Record<string, Buffer> = {
      deepTopic: generate({ cmd: 'publish', topic: deep, payload: '{}', qos: 1, messageId: 5, retain: false, dup: false }),
      // topic length field 0 and no topic bytes: rebuild by hand.
      emptyTopic: Buffer.concat([Buffer.from([0x30, 0x03, 0x00, 0x00]), Buffer.from('p')]),
      invalidUtf8,
      oversized: generate({ cmd: 'publish', topic: 'osp/nodes/node-1/metrics', payload: Buffer.alloc(200 * 1024, 0x41), qos: 1, messageId: 9, retain: false, dup: false }),
      deepSubscribe: generate({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: deep, qos: 0 }] } as Packet),
    };
    expect(emptyTopic.length).toBeGreaterThan(0);
    const before = bus.length;
    for (const [name, bytes] of Object.entries(cases)) {
      const c = await rawAuthed(`raw-${name}`);
      c.sock.write(bytes);
      await Promise.race([c.closed, new Promise((r) => setTimeout(r, 1000))]);
      expect(c.packets.some((p) => p.cmd === 'puback'), `${name} is not acknowledged`).toBe(false);
      if (name === 'deepSubscribe' && !c.isClosed()) {
        const suback = c.packets.find((p) => p.cmd === 'suback') as { granted?: number[] } | undefined;
        expect(suback?.granted?.[0], 'deep subscription refused').toBe(128);
      }
      c.sock.destroy();
    }
    expect(bus.slice(before)).toEqual([]);
    await roundTrip('bad topics');
  });

  it('a consumer that stops reading cannot stall healthy clients', async () => {
    const payload = JSON.stringify({ ts: Date.now(), pad: 'x'.repeat(8000) });
    const flood = 3000; // about 24 MB, far beyond socket buffers
    // Baseline: the same flood with no stuck consumer.
    let started = Date.now();
    for (let i = 0; i < flood; i++) healthyAgent.publish('osp/nodes/node-1/metrics', payload, { qos: 0 });
    await roundTrip('baseline flood');
    const baselineMs = Date.now() - started;

    const slow = await rawAuthed('slow-reader', 'reader', readerPw);
    slow.sock.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'osp/#', qos: 0 }] } as Packet));
    await waitFor('SUBACK for the slow consumer', () => slow.packets.some((p) => p.cmd === 'suback'), { timeoutMs: 15_000 });
    const clientsBefore = broker.connectedClients;
    slow.sock.pause(); // stop reading: kernel buffers fill, then the broker's writes back up
    started = Date.now();
    for (let i = 0; i < flood; i++) healthyAgent.publish('osp/nodes/node-1/metrics', payload, { qos: 0 });
    await roundTrip('slow consumer');
    const roundTripMs = Date.now() - started;
    // The broker drops the stuck consumer after drainTimeoutMs instead of buffering forever.
    // (Seen from the broker: the paused socket itself never reads the FIN.)
    await waitFor('slow consumer disconnected', () => broker.connectedClients === clientsBefore - 1, {
      timeoutMs: DRAIN_MS + 15_000, detail: () => `clients ${broker.connectedClients}, before ${clientsBefore}`,
    });
    await roundTrip('after slow consumer');
    console.log(JSON.stringify({ slowConsumerFloodMessages: flood, baselineRoundTripMs: baselineMs, withStuckConsumerRoundTripMs: roundTripMs, drainTimeoutMs: DRAIN_MS }));
    // Healthy clients did not wait out the stuck socket's drain timeout.
    expect(roundTripMs).toBeLessThan(baselineMs + DRAIN_MS / 2);
  });
});
