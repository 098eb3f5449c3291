// Benchmark: ospd's telemetry path (aedes + ACL + ingest + sink) against a
// plain mosquitto broker with a plain subscriber, same load, same run.
// Usage: npm run build && node test/bench/mqtt-bench.mjs
// Env: BENCH_PUBLISHERS (default 10), BENCH_SECONDS (5), BENCH_RATE (1000 msg/s
// total for the latency phase), BENCH_IDLE_CLIENTS (10000). Prints one JSON object.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import mqtt from 'mqtt';

const PUBLISHERS = Number(process.env.BENCH_PUBLISHERS ?? 10);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const IDLE = Number(process.env.BENCH_IDLE_CLIENTS ?? 10000);
const password = `bench-${Math.random().toString(36).slice(2)}`;
const here = new URL('.', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'osp-mqtt-bench-'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (arr, p) => {
  if (arr.length === 0) return null;
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const metrics = () => JSON.stringify({ ts: Date.now(), sent_ms: Date.now(), load1: 0.5, memory_total_bytes: 8e9, memory_available_bytes: 4e9, 'cpu_seconds_total{mode="user"}': 1234.5, uptime_seconds: 100 });

async function publishers(port, auth) {
  const clients = [];
  for (let i = 0; i < PUBLISHERS; i++) {
    clients.push(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `n${i}`, ...(auth ? { username: `n${i}`, password } : {}), reconnectPeriod: 0 }));
  }
  return clients;
}

/** Saturation: every publisher keeps at most `window` unwritten messages. */
async function saturate(clients, seconds) {
  let sent = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(clients.map(async (c, i) => {
    const topic = `osp/nodes/n${i}/metrics`;
    while (Date.now() < end) {
      await Promise.all(Array.from({ length: 50 }, () => new Promise((r) => c.publish(topic, metrics(), { qos: 0 }, r))));
      sent += 50;
      await new Promise((r) => setImmediate(r));
    }
  }));
  return sent;
}

/** Fixed total rate for the latency figure. */
async function paced(clients, seconds, rate) {
  const perTickMs = 10;
  const perTick = Math.max(1, Math.round((rate * perTickMs) / 1000));
  let sent = 0;
  const end = Date.now() + seconds * 1000;
  let k = 0;
  while (Date.now() < end) {
    for (let j = 0; j < perTick; j++, k++) {
      const i = k % clients.length;
      clients[i].publish(`osp/nodes/n${i}/metrics`, metrics(), { qos: 0 });
      sent++;
    }
    await sleep(perTickMs);
  }
  return sent;
}

function ask(child, msg) {
  return new Promise((resolve) => { child.once('message', resolve); child.send(msg); });
}

async function settle(count, prev = -1) {
  // Wait until the receive count stops moving (bounded: 10 s).
  for (let i = 0; i < 50; i++) {
    const n = await count();
    if (n === prev) return n;
    prev = n;
    await sleep(200);
  }
  return prev;
}

async function benchOspd() {
  const child = fork(join(here, 'mqtt-bench-broker.mjs'), [], { env: { ...process.env, BENCH_AGENTS: String(Math.max(PUBLISHERS, IDLE)), BENCH_PASSWORD: password } });
  const { port } = await new Promise((r) => child.once('message', r));
  const rssIdleStart = (await ask(child, { cmd: 'stats' })).rssBytes;
  const clients = await publishers(port, true);
  const t0 = Date.now();
  const sent = await saturate(clients, SECONDS);
  const received = await settle(async () => (await ask(child, { cmd: 'stats' })).received);
  const elapsedS = (Date.now() - t0) / 1000;
  await ask(child, { cmd: 'reset' });
  const pacedSent = await paced(clients, SECONDS, RATE);
  await settle(async () => (await ask(child, { cmd: 'stats' })).received);
  const st = await ask(child, { cmd: 'stats' });
  for (const c of clients) c.end(true);

  // Idle agents: each a distinct node with its own login, as in production.
  const idle = [];
  let idleError = null;
  try {
    for (let i = 0; i < IDLE; i += 250) {
      const batch = [];
      for (let j = i; j < Math.min(IDLE, i + 250); j++) {
        batch.push(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `n${j}`, username: `n${j}`, password, reconnectPeriod: 0, keepalive: 600 }));
      }
      idle.push(...(await Promise.all(batch)));
    }
  } catch (e) {
    idleError = String(e);
  }
  await sleep(1000);
  const idleStats = await ask(child, { cmd: 'stats' });
  await Promise.all(idle.map((c) => c.endAsync(true).catch(() => undefined)));
  child.send({ cmd: 'stop' });
  return {
    saturation: { sent, received, msgsPerSecond: Math.round(received / elapsedS) },
    latency: { rateMsgsPerSecond: RATE, sent: pacedSent, received: st.received, p50Ms: pct(st.latencies, 50), p99Ms: pct(st.latencies, 99) },
    idle: { requested: IDLE, connected: idleStats.clients, rssBytesBefore: rssIdleStart, rssBytes: idleStats.rssBytes, rssBytesPerClient: Math.round((idleStats.rssBytes - rssIdleStart) / Math.max(1, idleStats.clients)), error: idleError },
  };
}

async function benchMosquitto() {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 100000\n`);
  const proc = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  try {
    await sleep(300);
    const sub = fork(join(here, 'mqtt-bench-subscriber.mjs'), [], { env: { ...process.env, BENCH_PORT: String(port) } });
    await new Promise((r) => sub.once('message', r));
    const clients = await publishers(port, false);
    const t0 = Date.now();
    const sent = await saturate(clients, SECONDS);
    const got = await settle(async () => (await ask(sub, { cmd: 'stats' })).received);
    const elapsedS = (Date.now() - t0) / 1000;
    await ask(sub, { cmd: 'reset' });
    const pacedSent = await paced(clients, SECONDS, RATE);
    await settle(async () => (await ask(sub, { cmd: 'stats' })).received);
    const st = await ask(sub, { cmd: 'stats' });
    const out = {
      saturation: { sent, received: got, msgsPerSecond: Math.round(got / elapsedS) },
      latency: { rateMsgsPerSecond: RATE, sent: pacedSent, received: st.received, p50Ms: pct(st.latencies, 50), p99Ms: pct(st.latencies, 99) },
    };
    for (const c of clients) c.end(true);
    sub.send({ cmd: 'stop' });
    return out;
  } finally {
    proc.kill('SIGTERM');
  }
}

try {
  const ospd = await benchOspd();
  const mosquitto = await benchMosquitto();
  console.log(JSON.stringify({
    benchmark: 'mqtt-metrics-ingest',
    publishers: PUBLISHERS,
    seconds: SECONDS,
    ospd,
    mosquitto,
    ratio: Number((ospd.saturation.msgsPerSecond / mosquitto.saturation.msgsPerSecond).toFixed(3)),
    note: 'ospd = aedes + ACL + ingest + in-memory sink in a child process; mosquitto = plain broker + one plain mqtt.js subscriber in a child process. Throughput counts messages received by the sink/subscriber over the time from first publish until the count settles. Latency is publish-to-sink (ospd) vs publish-to-subscriber (mosquitto) at a fixed rate.',
  }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
