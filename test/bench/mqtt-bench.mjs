// Benchmark: ospd's telemetry path against mosquitto, same publishers, same
// message stream, same run, loopback only. Three runs, each ospd vs mosquitto:
// - in_process_sink (NOT equal work, kept for continuity): ospd = aedes + ACL
//   + ingest into an in-memory sink in ospd's own process; mosquitto = broker
//   + one external mqtt.js subscriber over TCP. ospd's messages never leave
//   its process, mosquitto's must cross a socket, so the ratio flatters ospd.
//   Also measures paced latency and the RSS of idle agent connections.
// - fanout (equal work): each broker delivers the stream to the same external
//   subscriber process over TCP (mqtt-bench-subscriber.mjs). ospd runs its
//   broker alone (real plain listener, frame guard, login, ACLs; no ingest),
//   the subscriber logs in as a reader. Delivered msg/s counted at the subscriber.
// - persistence (equal work; the headline): the real ospd (bin/ospd) with its
//   production ingest and SQLite sink, agents logging in with their node
//   tokens; vs mosquitto + an external consumer process writing the same
//   rows to SQLite the way ospd's sink does (mqtt-bench-sqlite-consumer.mjs).
//   Stored rows/s counted in each database file by the same read-only query.
// Throughput = count at the destination / time from first publish to the
// last change of that count. Every phase is bounded by BENCH_MESSAGES and
// BENCH_SECONDS; every wait for a count to settle by BENCH_SETTLE_MS.
// Usage: npm run build && node test/bench/mqtt-bench.mjs
// Env: BENCH_RUNS (in_process_sink,fanout,persistence), BENCH_PUBLISHERS (10),
// BENCH_MESSAGES (100000 per phase), BENCH_SECONDS (10, cap per phase),
// BENCH_RATE (1000 msg/s for latency), BENCH_IDLE_CLIENTS (10000),
// BENCH_SETTLE_MS (120000). Prints one JSON object.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import sqlite3 from 'sqlite3';
import { freePort, startOspd } from './ospd-process.mjs';

const ALL_RUNS = ['in_process_sink', 'fanout', 'persistence'];
function envInt(name, def, min, max) {
  const raw = process.env[name] ?? String(def);
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    console.error(`mqtt-bench: ${name} is ${JSON.stringify(raw)}; expected a whole number from ${min} to ${max}`);
    process.exit(2);
  }
  return v;
}
const RUNS = (process.env.BENCH_RUNS ?? ALL_RUNS.join(',')).split(',');
for (const r of RUNS) {
  if (!ALL_RUNS.includes(r)) {
    console.error(`mqtt-bench: BENCH_RUNS has ${JSON.stringify(r)}; expected a comma-separated subset of ${ALL_RUNS.join(', ')}`);
    process.exit(2);
  }
}
const PUBLISHERS = envInt('BENCH_PUBLISHERS', 10, 1, 1000);
const MESSAGES = envInt('BENCH_MESSAGES', 100_000, 1, 100_000_000);
const SECONDS = envInt('BENCH_SECONDS', 10, 1, 3600);
const RATE = envInt('BENCH_RATE', 1000, 1, 1_000_000);
const IDLE = envInt('BENCH_IDLE_CLIENTS', 10_000, 0, 1_000_000);
const SETTLE_MS = envInt('BENCH_SETTLE_MS', 120_000, 1000, 3_600_000);
const password = `bench-${Math.random().toString(36).slice(2)}`;
const here = new URL('.', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'osp-mqtt-bench-'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const benchStart = Date.now();
const progress = (msg) => process.stderr.write(`mqtt-bench +${((Date.now() - benchStart) / 1000).toFixed(1)}s: ${msg}\n`);
const pct = (arr, p) => {
  if (arr.length === 0) return null;
  const s = [...arr].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ratio = (a, b) => (b ? Number((a / b).toFixed(3)) : null);
const metrics = () => JSON.stringify({ ts: Date.now(), sent_ms: Date.now(), load1: 0.5, memory_total_bytes: 8e9, memory_available_bytes: 4e9, 'cpu_seconds_total{mode="user"}': 1234.5, uptime_seconds: 100 });

/** `logins[i]` is publisher i's { username, password } or null for anonymous. */
async function publishers(port, logins) {
  const clients = [];
  for (let i = 0; i < PUBLISHERS; i++) {
    clients.push(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `n${i}`, ...(logins[i] ?? {}), reconnectPeriod: 0, connectTimeout: 10_000 }));
  }
  return clients;
}

/** As fast as the sockets take it: each publisher keeps at most 50 unwritten messages; stops at MESSAGES in total or SECONDS. */
async function saturate(clients) {
  let sent = 0;
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(clients.map(async (c, i) => {
    const topic = `osp/nodes/n${i}/metrics`;
    while (Date.now() < end && sent < MESSAGES) {
      const n = Math.min(50, MESSAGES - sent);
      sent += n;
      await Promise.all(Array.from({ length: n }, () => new Promise((r) => c.publish(topic, metrics(), { qos: 0 }, r))));
      await new Promise((r) => setImmediate(r));
    }
  }));
  return sent;
}

/** Fixed total rate for the latency figure; bounded by SECONDS and MESSAGES. */
async function paced(clients, rate) {
  const perTickMs = 10;
  const perTick = Math.max(1, Math.round((rate * perTickMs) / 1000));
  let sent = 0;
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end && sent < MESSAGES) {
    for (let j = 0; j < perTick && sent < MESSAGES; j++, sent++) {
      const i = sent % clients.length;
      clients[i].publish(`osp/nodes/n${i}/metrics`, metrics(), { qos: 0 });
    }
    await sleep(perTickMs);
  }
  return sent;
}

function ask(child, msg) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`child ${child.pid} did not answer ${msg.cmd} within 30 s`)), 30_000);
    child.once('message', (m) => { clearTimeout(t); resolve(m); });
    child.send(msg);
  });
}

/** Forks a bench child and waits (bounded) for its first message. */
async function forkChild(script, env) {
  const child = fork(join(here, script), [], { env: { ...process.env, ...env } });
  const first = await Promise.race([
    new Promise((r) => child.once('message', r)),
    new Promise((_, rej) => child.once('exit', (code) => rej(new Error(`${script} exited with ${code} before it was ready`)))),
    sleep(60_000).then(() => { throw new Error(`${script} not ready within 60 s`); }),
  ]);
  return { child, first };
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.send({ cmd: 'stop' });
  if (await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]) === false) child.kill('SIGKILL');
}

/**
 * Polls a destination count until it reaches `expected`, stops moving for
 * 15 s (30 s while it is still 0), or SETTLE_MS passes; returns the count and
 * when it last changed. The pauses are long because a consumer handed a
 * burst can stall for seconds (parsing it, or ospd's sink looking up the
 * node once per queued message) before writes resume; the rate uses the time
 * of the last change, so waiting longer costs no accuracy.
 */
async function settle(count, expected) {
  const started = Date.now();
  let n = await count();
  let changedAtMs = Date.now();
  let still = 0;
  const patience = () => (n === 0 ? 300 : 150);
  while (n < expected && still < patience() && Date.now() - started < SETTLE_MS) {
    await sleep(100);
    const m = await count();
    if (m !== n) {
      n = m;
      changedAtMs = Date.now();
      still = 0;
    } else {
      still++;
    }
  }
  return { count: n, changedAtMs, settled: n >= expected || still >= patience() };
}

/** One saturation phase: publish, wait for the destination count, report throughput. */
async function throughput(clients, count, unit) {
  const base = await count();
  const t0 = Date.now();
  const sent = await saturate(clients);
  const publishSeconds = (Date.now() - t0) / 1000;
  const s = await settle(async () => (await count()) - base, sent);
  const seconds = Math.max(0.001, (s.changedAtMs - t0) / 1000);
  progress(`saturation: sent ${sent}, ${unit} ${s.count} in ${seconds.toFixed(2)} s`);
  return { sent, [unit]: s.count, lost: sent - s.count, publishSeconds, seconds, msgsPerSecond: Math.round(s.count / seconds), settled: s.settled };
}

async function latency(clients, child) {
  await ask(child, { cmd: 'reset' });
  const sent = await paced(clients, RATE);
  await settle(async () => (await ask(child, { cmd: 'stats' })).received, sent);
  const st = await ask(child, { cmd: 'stats' });
  return { rateMsgsPerSecond: RATE, sent, received: st.received, p50Ms: pct(st.latencies, 50), p99Ms: pct(st.latencies, 99) };
}

async function startMosquitto() {
  const port = await freePort();
  const conf = join(dir, `mosquitto-${port}.conf`);
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 100000\n`);
  const proc = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    if (await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]) === false) proc.kill('SIGKILL');
  };
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((r) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (up) return { port, stop };
    await sleep(100);
  }
  await stop();
  throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within 10 s`);
}

const endAll = (clients) => Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
const agentLogins = () => Array.from({ length: PUBLISHERS }, (_, i) => ({ username: `n${i}`, password }));
const anonymous = () => [];

/** ospd = broker child with ingest into an in-memory sink; counts at the sink. */
async function inProcessOspd() {
  const { child, first } = await forkChild('mqtt-bench-broker.mjs', { BENCH_AGENTS: String(Math.max(PUBLISHERS, IDLE)), BENCH_PASSWORD: password, BENCH_INGEST: 'memory' });
  try {
    const rssIdleStart = (await ask(child, { cmd: 'stats' })).rssBytes;
    const clients = await publishers(first.port, agentLogins());
    const saturation = await throughput(clients, async () => (await ask(child, { cmd: 'stats' })).received, 'received');
    const lat = await latency(clients, child);
    await endAll(clients);
    // Idle agents: each a distinct node with its own login, as in production.
    const idle = [];
    let idleError = null;
    try {
      for (let i = 0; i < IDLE; i += 250) {
        const batch = [];
        for (let j = i; j < Math.min(IDLE, i + 250); j++) {
          batch.push(mqtt.connectAsync(`mqtt://127.0.0.1:${first.port}`, { clientId: `n${j}`, username: `n${j}`, password, reconnectPeriod: 0, keepalive: 600, connectTimeout: 30_000 }));
        }
        idle.push(...(await Promise.all(batch)));
      }
    } catch (e) {
      idleError = String(e);
    }
    await sleep(1000);
    const idleStats = await ask(child, { cmd: 'stats' });
    await endAll(idle);
    return {
      saturation, latency: lat,
      idle: { requested: IDLE, connected: idleStats.clients, rssBytesBefore: rssIdleStart, rssBytes: idleStats.rssBytes, rssBytesPerClient: Math.round((idleStats.rssBytes - rssIdleStart) / Math.max(1, idleStats.clients)), error: idleError },
    };
  } finally {
    await stopChild(child);
  }
}

/** Any broker on `port` delivering to the shared external subscriber. */
async function toSubscriber(port, logins, subscriberLogin) {
  const { child: sub } = await forkChild('mqtt-bench-subscriber.mjs', { BENCH_PORT: String(port), ...subscriberLogin });
  try {
    const clients = await publishers(port, logins);
    const saturation = await throughput(clients, async () => (await ask(sub, { cmd: 'stats' })).received, 'received');
    const lat = await latency(clients, sub);
    await endAll(clients);
    return { saturation, latency: lat };
  } finally {
    await stopChild(sub);
  }
}

async function withMosquitto(fn) {
  const m = await startMosquitto();
  try {
    return await fn(m.port);
  } finally {
    await m.stop();
  }
}

/** Rows in node_metrics_raw, read the same way from either database (rows are only added during the run). */
async function rowCounter(file) {
  const db = await new Promise((resolve, reject) => {
    const d = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (e) => (e ? reject(e) : resolve(d)));
  });
  const count = () => new Promise((resolve, reject) =>
    db.get('SELECT COALESCE(MAX(rowid), 0) AS n FROM node_metrics_raw', [], (e, row) => (e ? reject(e) : resolve(row.n))));
  return { count, close: () => new Promise((r) => db.close(r)) };
}

async function persistenceOspd() {
  const port = await freePort();
  const ospd = await startOspd({ prefix: 'osp-mqtt-bench-ospd-', listenArgs: ['--mqtt-plain-listen', `127.0.0.1:${port}`] });
  let rows = null;
  try {
    const agents = await ospd.enrol(Array.from({ length: PUBLISHERS }, (_, i) => `n${i}`));
    rows = await rowCounter(join(ospd.dataDir, 'ospd.sqlite'));
    const clients = await publishers(port, agents.map((a) => ({ username: a.node, password: a.token })));
    const saturation = await throughput(clients, rows.count, 'stored');
    await endAll(clients);
    return { saturation };
  } finally {
    await rows?.close();
    await ospd.stop();
  }
}

async function persistenceMosquitto() {
  return withMosquitto(async (port) => {
    const file = join(dir, 'consumer.sqlite');
    const { child } = await forkChild('mqtt-bench-sqlite-consumer.mjs', {
      BENCH_PORT: String(port), BENCH_DB: file, BENCH_NODES: Array.from({ length: PUBLISHERS }, (_, i) => `n${i}`).join(','),
    });
    const rows = await rowCounter(file);
    try {
      const clients = await publishers(port, anonymous());
      const saturation = await throughput(clients, rows.count, 'stored');
      await endAll(clients);
      return { saturation, consumer: await ask(child, { cmd: 'stats' }) };
    } finally {
      await rows.close();
      await stopChild(child);
    }
  });
}

const WHAT = {
  in_process_sink: 'NOT equal work: ospd ingests into an in-memory sink inside its own process; mosquitto delivers over TCP to an external subscriber',
  fanout: 'equal work: each broker delivers the same stream over TCP to the same external subscriber process (ospd: broker only, reader login)',
  persistence: 'equal work: real ospd with its production ingest + SQLite sink vs mosquitto + an external consumer writing the same rows to SQLite the same way',
};

function compare(name, ospd, mosquitto) {
  progress(`${name}: done`);
  return { what: WHAT[name], ospd, mosquitto, ratio: ratio(ospd.saturation.msgsPerSecond, mosquitto.saturation.msgsPerSecond) };
}

try {
  const runs = {};
  if (RUNS.includes('in_process_sink')) {
    runs.in_process_sink = compare('in_process_sink', await inProcessOspd(), await withMosquitto((port) => toSubscriber(port, anonymous(), {})));
  }
  if (RUNS.includes('fanout')) {
    const { child, first } = await forkChild('mqtt-bench-broker.mjs', { BENCH_AGENTS: String(PUBLISHERS), BENCH_PASSWORD: password, BENCH_INGEST: 'off' });
    let ospd;
    try {
      ospd = await toSubscriber(first.port, agentLogins(), { BENCH_USERNAME: 'bench-reader', BENCH_PASSWORD: password });
    } finally {
      await stopChild(child);
    }
    runs.fanout = compare('fanout', ospd, await withMosquitto((port) => toSubscriber(port, anonymous(), {})));
  }
  if (RUNS.includes('persistence')) runs.persistence = compare('persistence', await persistenceOspd(), await persistenceMosquitto());
  const headlineRun = ['persistence', 'fanout'].find((r) => runs[r]) ?? null;
  console.log(JSON.stringify({
    benchmark: 'mqtt-metrics-ingest',
    publishers: PUBLISHERS, messagesPerPhase: MESSAGES, secondsCapPerPhase: SECONDS,
    headline: headlineRun
      ? { run: headlineRun, what: WHAT[headlineRun], ospdMsgsPerSecond: runs[headlineRun].ospd.saturation.msgsPerSecond, mosquittoMsgsPerSecond: runs[headlineRun].mosquitto.saturation.msgsPerSecond, ratio: runs[headlineRun].ratio }
      : { run: null, what: 'no equal-work run was selected (BENCH_RUNS); in_process_sink is not a like-for-like comparison', ratio: null },
    runs,
    note: 'ratio = ospd msg/s / mosquitto msg/s. Throughput = count at the destination (sink, subscriber, or rows in SQLite) over the time from first publish to the last change of that count; lost = sent - counted (QoS 0: brokers may drop for slow consumers). Latency is publish-to-destination at a fixed rate.',
  }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
