import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import WebSocket from 'ws';
import { generate, parser as mqttParser, type Packet } from 'mqtt-packet';
import { connectAsync, type MqttClient } from 'mqtt';
import { OSPD, OspdProcess, runProgram } from '../harness/ospd.js';
import { resolveConfig } from '../../server/config.js';
import { InMemoryAuthenticator } from '../../server/telemetry/auth.js';
import { TelemetryBroker } from '../../server/telemetry/broker.js';
import { waitFor } from '../harness/wait.js';
import { grantedQos, makePki, tempDir, type TestPki } from './helpers.js';

/**
 * MQTT over WebSocket (WSS, MQTT 3.1.1 section 6): Eclipse paho-mqtt (Python,
 * Debian python3-paho-mqtt) as the third-party consumer, mqtt.js and the ws
 * client for the agent side and hand-made frames, curl for the HTTP answers.
 * Everything listens on loopback; every wait is bounded.
 */

const HERE = path.dirname(new URL(import.meta.url).pathname);
const PAHO = path.join(HERE, 'wss_subscriber.py');

type Line = Record<string, unknown>;

interface Paho {
  lines: Line[];
  exit: Promise<number | null>;
  waitFor(pred: (lines: Line[]) => boolean, timeoutMs: number): Promise<void>;
  stop(): void;
}

/** Runs wss_subscriber.py; the password goes through the environment, never argv. */
function paho(args: { port: number; caFile: string; username: string; password: string; topic: string; count: number; timeoutS: number }): Paho {
  const proc = spawn('/usr/bin/python3', [PAHO, '127.0.0.1', String(args.port), args.caFile, args.username, args.topic, String(args.count), String(args.timeoutS)], {
    env: { ...process.env, OSP_MQTT_PASSWORD: args.password }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  let buf = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Line);
  });
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The script bounds itself; this kill only covers a hung interpreter.
  const killer = setTimeout(() => proc.kill('SIGKILL'), (args.timeoutS + 15) * 1000);
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => {
    clearTimeout(killer);
    resolve(code);
  }));
  return {
    lines,
    exit,
    waitFor: async (pred, timeoutMs) => {
      const context = () => `exit ${proc.exitCode}; stderr: ${stderr}; lines: ${JSON.stringify(lines.slice(-5))}`;
      await waitFor('paho output to match', () => {
        if (pred(lines)) return true;
        if (proc.exitCode !== null) throw new Error(`paho exited before its output matched (${context()})`);
        return false;
      }, { timeoutMs, intervalMs: 50, detail: context });
    },
    stop: () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
    },
  };
}

/** A WebSocket client speaking raw MQTT bytes, to send frames no MQTT library would. */
interface RawWs {
  ws: WebSocket;
  packets: Packet[];
  textMessages: number;
  closed: Promise<{ code: number; reason: string }>;
}

function rawWs(url: string, caPem: string, protocols: string[] = ['mqtt']): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { ca: caPem });
    const parser = mqttParser({ protocolVersion: 4 });
    const r: RawWs = {
      ws, packets: [], textMessages: 0,
      closed: new Promise((res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString() }))),
    };
    parser.on('packet', (p) => r.packets.push(p));
    parser.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (!isBinary) r.textMessages++;
      parser.parse(data as Buffer);
    });
    const timer = setTimeout(() => reject(new Error('WebSocket open timed out')), 10_000);
    // Errors after the opening handshake show up as the close code, which tests check.
    ws.on('error', (e) => reject(e));
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(r);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`HTTP ${res.statusCode}`));
    });
  });
}


/** Bounded: a connection the server never closes fails the test instead of hanging it. */
function closedWithin(r: RawWs, ms: number): Promise<{ code: number; reason: string } | 'still open'> {
  return Promise.race([r.closed, new Promise<'still open'>((res) => setTimeout(() => res('still open'), ms))]);
}


const rand = () => Math.random().toString(36).slice(2, 10);

describe('MQTT over WebSocket in ospd: paho-mqtt, mqtt.js, curl', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'osp-wss-'));
  const caFile = path.join(work, 'ca.pem');
  let ospd: OspdProcess;
  let caPem = '';
  let wsPort = 0;
  let tlsPort = 0;
  const tokens: Record<string, string> = {};
  const reader = { name: 'dash', password: '' };
  const clients: MqttClient[] = [];
  const pahos: Paho[] = [];

  const wssUrl = () => `wss://127.0.0.1:${wsPort}/mqtt`;
  const login = async (url: string, username: string, password: string) => {
    const c = await connectAsync(url, { username, password, ca: caPem, clientId: `${username}-${rand()}`, reconnectPeriod: 0, connectTimeout: 5000 });
    clients.push(c);
    return c;
  };

  /** curl's body and status; --http1.1 because a WebSocket upgrade is an HTTP/1.1 affair (RFC 6455 section 4.1). */
  const curl = async (urlPath: string, headers: string[] = [], extra: string[] = []) => {
    const args = ['-s', '--http1.1', '--max-time', '5', '--cacert', caFile, '-D', '-', '-o', '-', '-w', '\n%{http_code}', ...extra];
    for (const h of headers) args.push('-H', h);
    const r = await runProgram('curl', [...args, `https://127.0.0.1:${wsPort}${urlPath}`], { timeoutMs: 15_000 });
    const lines = r.stdout.trimEnd().split('\n');
    return { status: Number(lines.pop()), text: lines.join('\n'), code: r.code };
  };
  const upgrade = (protocol?: string) => [
    'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...(protocol === undefined ? [] : [`Sec-WebSocket-Protocol: ${protocol}`]),
  ];

  beforeAll(async () => {
    ospd = new OspdProcess(path.join(work, 'ospd'), ['--mqtt-ws-listen', '127.0.0.1:0']);
    await ospd.start();
    wsPort = ospd.listeners!.mqtt.ws;
    tlsPort = ospd.listeners!.mqtt.tls;
    caPem = ospd.admin().ca;
    writeFileSync(caFile, caPem);
    for (const n of ['web-0', 'web-1']) {
      const created = await ospd.ctl(['node', 'create', '--name', n, '--driver', 'fake']);
      expect(created.code, created.stderr).toBe(0);
      const cfg = await ospd.ctl(['node', 'agent-config', n]);
      expect(cfg.code, cfg.stderr).toBe(0);
      tokens[n] = (YAML.parse(cfg.stdout) as { token: string }).token;
    }
    const user = await ospd.ctl(['mqtt', 'user', 'create', reader.name, '--role', 'reader', '-f', 'json']);
    expect(user.code, user.stderr).toBe(0);
    reader.password = (JSON.parse(user.stdout) as { password: string }).password;
  }, 90_000);

  afterAll(async () => {
    for (const p of pahos) p.stop();
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await ospd?.stop();
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it("the ws listener's bound port is in listeners.json; paho-mqtt over WSS as a reader receives an agent's publish", async () => {
    expect(wsPort, 'ws listener in listeners.json').toBeGreaterThan(0);
    const sub = paho({ port: wsPort, caFile, username: reader.name, password: reader.password, topic: 'osp/#', count: 50, timeoutS: 30 });
    pahos.push(sub);
    await sub.waitFor((l) => l.some((x) => 'subscribed' in x), 20_000);
    expect(sub.lines[0]).toEqual({ connack: 0 });
    expect(sub.lines.find((x) => 'subscribed' in x)).toEqual({ subscribed: [1] });

    const agent = await login(`mqtts://127.0.0.1:${tlsPort}`, 'web-0', tokens['web-0']);
    const marker = `wss-${rand()}`;
    await agent.publishAsync('osp/nodes/web-0/events', JSON.stringify({ type: 'test', marker }), { qos: 1 });
    await sub.waitFor((l) => l.some((x) => x.topic === 'osp/nodes/web-0/events' && String(x.payload).includes(marker)), 20_000);
    const got = sub.lines.find((x) => x.topic === 'osp/nodes/web-0/events' && String(x.payload).includes(marker))!;
    expect(JSON.parse(String(got.payload))).toEqual({ type: 'test', marker });
    expect(sub.lines).toContainEqual({ topic: 'osp/server/status', payload: 'online', qos: 1, retain: true });
    sub.stop();
  }, 60_000);

  it('a wrong password over WSS is refused: paho gets CONNACK 4, mqtt.js is rejected', async () => {
    const bad = paho({ port: wsPort, caFile, username: reader.name, password: 'not-the-password', topic: 'osp/#', count: 1, timeoutS: 15 });
    pahos.push(bad);
    expect(await bad.exit).toBe(3);
    // MQTT 3.1.1 section 3.2.2.3: return code 4 is "bad user name or password".
    expect(bad.lines).toEqual([{ connack: 4 }]);
    await expect(connectAsync(wssUrl(), { username: reader.name, password: 'not-the-password', ca: caPem, reconnectPeriod: 0, connectTimeout: 5000 }))
      .rejects.toThrow(/Bad username|Not authorized/i);
    // The same call with the right password connects, so the refusal above is the password's doing.
    const ok = await login(wssUrl(), reader.name, reader.password);
    expect(ok.connected).toBe(true);
  }, 60_000);

  it('curl: an upgrade without the mqtt subprotocol gets 400, a plain GET 426, other paths 404', async () => {
    const none = await curl('/mqtt', upgrade());
    expect(none.status).toBe(400);
    expect(none.text).toMatch(/expected the WebSocket subprotocol 'mqtt'/);
    const chat = await curl('/mqtt', upgrade('chat'));
    expect(chat.status).toBe(400);
    const otherPath = await curl('/ws', upgrade('mqtt'));
    expect(otherPath.status).toBe(404);
    const get = await curl('/mqtt');
    expect(get.status).toBe(426);
    expect(get.text).toMatch(/^upgrade: websocket\r?$/im);
    expect(get.text).toMatch(/wss:\/\/HOST:PORT\/mqtt/);
    for (const p of ['/', '/metrics', '/mqtt/x']) {
      const r = await curl(p);
      expect(r.status, p).toBe(404);
      expect(r.text).toMatch(/not found/);
    }
    // The same request with the subprotocol is switched (curl then waits out --max-time), so the 400s above are about the subprotocol alone.
    const good = await curl('/mqtt', upgrade('mqtt'), ['--max-time', '2']);
    expect(good.status).toBe(101);
    expect(good.text).toMatch(/^sec-websocket-protocol: mqtt\r?$/im);
  }, 60_000);

  it("the ACL holds over WSS: an agent cannot subscribe to another node's topics", async () => {
    const web0 = await login(wssUrl(), 'web-0', tokens['web-0']);
    const seenByWeb0: string[] = [];
    web0.on('message', (t) => seenByWeb0.push(t));
    expect(await grantedQos(web0, 'osp/nodes/web-1/#'), 'web-0 subscribe osp/nodes/web-1/#').toBe(128);
    expect(await grantedQos(web0, 'osp/nodes/web-0/#'), 'web-0 own prefix').toBe(1);
    const dash = await login(wssUrl(), reader.name, reader.password);
    const seenByReader: string[] = [];
    dash.on('message', (t, p) => seenByReader.push(`${t} ${p.toString()}`));
    expect(await grantedQos(dash, 'osp/nodes/web-1/#')).toBe(1);

    const web1 = await login(`mqtts://127.0.0.1:${tlsPort}`, 'web-1', tokens['web-1']);
    const marker = `acl-${rand()}`;
    await web1.publishAsync('osp/nodes/web-1/events', JSON.stringify({ marker }), { qos: 1 });
    await waitFor('the reader sees web-1', () => seenByReader.some((s) => s.includes(marker)), { timeoutMs: 10_000 });
    // Delivery is one broker pass; a short grace for a wrongly routed copy to arrive.
    await new Promise((r) => setTimeout(r, 300));
    expect(seenByWeb0.filter((t) => t.startsWith('osp/nodes/web-1/'))).toEqual([]);
  }, 60_000);

  it('binary frames only: a text frame closes with 1003 before the broker reads it', async () => {
    // An anonymous CONNECT is all ASCII, so it is valid UTF-8 text; the broker answers it (refusing) only if it reads it.
    const connect = generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'text-frame' });
    expect([...connect].every((b) => b < 0x80)).toBe(true);

    const asBinary = await rawWs(wssUrl(), caPem);
    expect(asBinary.ws.protocol).toBe('mqtt');
    asBinary.ws.send(connect, { binary: true });
    await waitFor('a binary CONNECT is answered', () => asBinary.packets.some((p) => p.cmd === 'connack'), { timeoutMs: 10_000 });
    asBinary.ws.terminate();

    const asText = await rawWs(wssUrl(), caPem);
    asText.ws.send(connect.toString('latin1'), { binary: false });
    const closed = await closedWithin(asText, 10_000);
    expect(closed).toEqual({ code: 1003, reason: 'MQTT over WebSocket takes binary frames only' });
    expect(asText.packets).toEqual([]);
  }, 60_000);

  it('a packet that declares more than the limit is refused from its header, even sent in small frames', async () => {
    const r = await rawWs(wssUrl(), caPem);
    // CONNECT declaring 200 MiB (Remaining Length 0x80 0x80 0x80 0x64), then a first small frame of its body.
    r.ws.send(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]), { binary: true });
    r.ws.send(Buffer.alloc(1024, 0x41), { binary: true });
    expect(await closedWithin(r, 10_000)).not.toBe('still open');
    expect(r.packets).toEqual([]);
  }, 60_000);

  it("a message over the broker's packet limit closes with 1009; the subprotocol chosen is mqtt, or mqttv3.1 when offered alone", async () => {
    const big = await rawWs(wssUrl(), caPem);
    big.ws.send(Buffer.alloc(400 * 1024, 0x30), { binary: true });
    expect(await closedWithin(big, 10_000)).toMatchObject({ code: 1009 });

    // MQTT 3.1 clients offer mqttv3.1 alone; with both offered the server picks mqtt [MQTT-6.0.0-4].
    for (const [offer, chosen] of [[['mqttv3.1'], 'mqttv3.1'], [['mqttv3.1', 'mqtt'], 'mqtt']] as const) {
      const r = await rawWs(wssUrl(), caPem, [...offer]);
      expect(r.ws.protocol, offer.join(',')).toBe(chosen);
      r.ws.terminate();
    }
  }, 60_000);

  // Last: it stops ospd.
  it('on SIGTERM a connected WSS client is told 1001 Going Away and ospd exits 0', async () => {
    const c = await rawWs(wssUrl(), caPem);
    c.ws.send(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: `sigterm-${rand()}`, username: reader.name, password: Buffer.from(reader.password) }));
    await waitFor('CONNACK accepted', () => c.packets.some((p) => p.cmd === 'connack' && p.returnCode === 0), { timeoutMs: 10_000 });
    expect(await ospd.stop('SIGTERM')).toBe(0);
    expect(await closedWithin(c, 5_000)).toEqual({ code: 1001, reason: 'ospd stopping' });
  }, 60_000);
});

describe('mqtt-ws-listen setting', () => {
  it('defaults to off; HOST:PORT from the YAML key or the flag; off turns it off again', () => {
    expect(resolveConfig({}, {}).telemetry.mqttWsListen).toBeNull();
    expect(resolveConfig({ 'mqtt-ws-listen': '[::1]:9001' }, {}).telemetry.mqttWsListen).toEqual({ host: '::1', port: 9001 });
    expect(resolveConfig({ 'mqtt-ws-listen': '0.0.0.0:9001' }, { 'mqtt-ws-listen': 'off' }).telemetry.mqttWsListen).toBeNull();
    expect(() => resolveConfig({ 'mqtt-ws-listen': 'nowhere' }, {})).toThrow(/mqtt-ws-listen: "nowhere" is not valid/);
  });

  it('ospd --mqtt-ws-listen nonsense exits 2 with one line naming the key', async () => {
    const dir = tempDir('wss-config');
    try {
      const r = await runProgram(process.execPath, [OSPD, '--data-dir', path.join(dir.path, 'd'), '--mqtt-ws-listen', 'nonsense'], { timeoutMs: 30_000 });
      expect(r.code).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^ospd: config: mqtt-ws-listen: "nonsense" is not valid: expected HOST:PORT or 'off'/);
    } finally {
      dir.remove();
    }
  }, 40_000);
});

describe('TelemetryBroker WSS listener in process', () => {
  const DRAIN_MS = 4_000;
  const dir = tempDir('wss-broker');
  let pki: TestPki;
  const token = `t-${rand()}`;
  const readerPw = `r-${rand()}`;
  const auth = new InMemoryAuthenticator().addAgent('node-1', token).addReader('reader', readerPw);
  let broker: TelemetryBroker;
  const extra: RawWs[] = [];
  const clients: MqttClient[] = [];

  const readerConnect = () => generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: `r-${rand()}`, username: 'reader', password: Buffer.from(readerPw) });

  beforeAll(async () => {
    pki = makePki(dir.path);
    broker = new TelemetryBroker({
      authenticator: auth, plain: { host: '127.0.0.1', port: 0 }, drainTimeoutMs: DRAIN_MS,
      ws: { host: '127.0.0.1', port: 0, certPem: pki.certPem, keyPem: pki.keyPem },
    });
    await broker.start();
  });

  afterAll(async () => {
    for (const r of extra) r.ws.terminate();
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await broker?.stop();
    dir.remove();
  });

  it('ports() names the ws listener only when it is configured', async () => {
    expect(Object.keys(broker.ports()).sort()).toEqual(['plain', 'ws']);
    expect(broker.ports().ws).toBeGreaterThan(0);
    const without = new TelemetryBroker({ authenticator: auth, plain: { host: '127.0.0.1', port: 0 } });
    await without.start();
    try {
      expect(Object.keys(without.ports())).toEqual(['plain']);
    } finally {
      await without.stop();
    }
  });

  it('a WSS subscriber that stops reading is dropped after the drain timeout without stalling the others', async () => {
    const url = `wss://127.0.0.1:${broker.ports().ws}/mqtt`;
    const healthy = await connectAsync(url, { username: 'reader', password: readerPw, ca: pki.caPem, clientId: `healthy-${rand()}`, reconnectPeriod: 0 });
    clients.push(healthy);
    const got: string[] = [];
    healthy.on('message', (_t, p) => got.push(p.toString()));
    await healthy.subscribeAsync('osp/#', { qos: 1 });
    const agent = await connectAsync(`mqtt://127.0.0.1:${broker.ports().plain}`, { username: 'node-1', password: token, clientId: 'node-1', reconnectPeriod: 0 });
    clients.push(agent);
    const roundTrip = async (label: string) => {
      const marker = `${label}-${rand()}`;
      await agent.publishAsync('osp/nodes/node-1/events', JSON.stringify({ marker }), { qos: 1 });
      await waitFor(`healthy round trip after ${label}`, () => got.some((g) => g.includes(marker)), { timeoutMs: 15_000 });
    };

    const slow = await rawWs(url, pki.caPem);
    extra.push(slow);
    slow.ws.send(readerConnect());
    // A SUBSCRIBE that overtakes the (asynchronous) login is refused, so wait for the CONNACK.
    await waitFor('slow consumer connected', () => slow.packets.some((p) => p.cmd === 'connack' && p.returnCode === 0), { timeoutMs: 10_000 });
    slow.ws.send(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'osp/#', qos: 0 }] } as Packet));
    await waitFor('SUBACK for the slow consumer', () => slow.packets.some((p) => p.cmd === 'suback'), { timeoutMs: 10_000 });
    const clientsBefore = broker.connectedClients;
    slow.ws.pause(); // stops reading the socket: kernel buffers fill, then the broker's writes back up

    const payload = JSON.stringify({ pad: 'x'.repeat(8000) });
    const started = Date.now();
    for (let i = 0; i < 2000; i++) agent.publish('osp/nodes/node-1/metrics', payload, { qos: 0 });
    await roundTrip('flood');
    const roundTripMs = Date.now() - started;
    // The broker judges a subscriber at delivery time, so deliveries keep coming while we wait (bounded).
    await waitFor('stuck WSS subscriber disconnected', () => {
      if (broker.connectedClients === clientsBefore - 1) return true;
      agent.publish('osp/nodes/node-1/metrics', payload, { qos: 0 });
      return false;
    }, { timeoutMs: 20_000, intervalMs: 200, detail: () => `clients ${broker.connectedClients}, before ${clientsBefore}` });
    await roundTrip('after the stuck subscriber');
    expect(roundTripMs, 'healthy clients did not wait out the drain timeout').toBeLessThan(DRAIN_MS);
  }, 90_000);

  // Last: it stops the broker.
  it('stop() closes WSS clients with 1001 and the listener stops accepting', async () => {
    const port = broker.ports().ws;
    const c = await rawWs(`wss://127.0.0.1:${port}/mqtt`, pki.caPem);
    c.ws.send(readerConnect());
    await waitFor('CONNACK accepted', () => c.packets.some((p) => p.cmd === 'connack' && p.returnCode === 0), { timeoutMs: 10_000 });
    await broker.stop();
    expect(await closedWithin(c, 5_000)).toEqual({ code: 1001, reason: 'ospd stopping' });
    await expect(rawWs(`wss://127.0.0.1:${port}/mqtt`, pki.caPem)).rejects.toThrow(/ECONNREFUSED/);
  });
});
