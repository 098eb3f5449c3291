#!/usr/bin/env node
// Config propagation benchmark (issue 5): commit → acknowledgement latency
// across N connected agents, osp's push stream vs the os-collect-config model
// (each agent polls every --poll-interval-ms, default 30 s; the JSON prints
// the interval the workers report using), measured in the same run against one real
// ospd on loopback. Agents are the real transport code in worker processes,
// each with its own TLS connection; applying is stubbed. Prints JSON.
// Usage: node test/bench/config-push.mjs [--agents 1000,10000] [--poll-agents 1000] [--poll-interval-ms 30000]
import { fork } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { benchArgs } from './bench-args.mjs';
import { pool, startOspd, unary } from './ospd-process.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const { arg, intArg } = benchArgs('config-push');
const SIZES = arg('agents', '1000,10000').split(',').map((s, i) => {
  const v = Number(s);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`config-push: --agents item ${i} is ${JSON.stringify(s)}; expected a comma-separated list of whole numbers >= 1`);
    process.exit(2);
  }
  return v;
});
const POLL_AGENTS = intArg('poll-agents', '1000', 0, 1_000_000);
const POLL_INTERVAL_MS = intArg('poll-interval-ms', '30000', 100, 3_600_000);
const WORKERS = intArg('workers', '4', 1, 64);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function scenario(n, mode) {
  // Only the gRPC API is under test; the other listeners stay off so nothing else competes for ports.
  const ospd = await startOspd({ prefix: 'osp-bench-push-' });
  const { md, configs: cfg } = ospd;
  const workers = [];
  const credsFile = `${ospd.dataDir}.agents.json`;
  try {
    const names = Array.from({ length: n }, (_, i) => `agent-${i}`);
    writeFileSync(credsFile, JSON.stringify(await ospd.enrol(names)));
    const per = Math.ceil(n / WORKERS);
    const connectStart = Date.now();
    for (let w = 0; w < WORKERS; w++) {
      const from = w * per;
      const to = Math.min(n, from + per);
      if (from >= to) continue;
      const child = fork(path.join(here, 'config-push-worker.mjs'), [credsFile, String(from), String(to), mode, String(POLL_INTERVAL_MS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      workers.push({ child, ready: new Promise((res, rej) => child.on('message', (m) => (m.type === 'ready' ? res(m) : m.type === 'error' ? rej(new Error(m.message)) : undefined))) });
    }
    const ready = await Promise.all(workers.map((w) => w.ready));
    // What the workers report they poll at, not what was asked for: the figure to print.
    const intervals = [...new Set(ready.map((m) => m.pollIntervalMs).filter((v) => v !== undefined))];
    const connectSeconds = (Date.now() - connectStart) / 1000;
    const rssIdle = rssBytes(ospd.proc.pid);

    // The change: one metadata commit per node, as fast as the API takes them.
    const commitStart = Date.now();
    const committed = await pool(names, 32, async (name) => {
      const r = await unary(cfg, 'setMetadata', { id: name, metadataJson: JSON.stringify({ ntp: { servers: ['192.0.2.1'] }, bench: commitStart }) }, md);
      return { node: name, createdAtMs: Date.parse(r.createdAt) };
    });
    const commitSeconds = (Date.now() - commitStart) / 1000;
    let rssPeak = rssBytes(ospd.proc.pid);
    const deadline = Date.now() + (mode === 'poll' ? POLL_INTERVAL_MS * 2 + 30_000 : 180_000);
    let acks = [];
    while (Date.now() < deadline) {
      await sleep(1000);
      rssPeak = Math.max(rssPeak, rssBytes(ospd.proc.pid));
      const reports = await Promise.all(workers.map((w) => new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error(`config-push worker ${w.child.pid} did not report within 30 s`)), 30_000);
        w.child.once('message', (m) => { clearTimeout(t); res(m); });
        w.child.send({ type: 'report' });
      })));
      acks = reports.flatMap((r) => r.acks);
      process.stderr.write(`bench: ${mode} ${n}: ${acks.length} acked\n`);
      if (acks.length >= n) break;
    }
    const created = new Map(committed.map((c) => [c.node, c.createdAtMs]));
    const lat = acks.map((a) => (a.ackedAtMs - created.get(a.node)) / 1000).sort((a, b) => a - b);
    return {
      mode, agents: n, ...(mode === 'poll' ? { poll_interval_ms_used: intervals.length === 1 ? intervals[0] : intervals } : {}), acked: acks.length, connect_seconds: connectSeconds, commit_seconds: commitSeconds,
      p50_seconds: pct(lat, 50), p99_seconds: pct(lat, 99), max_seconds: lat[lat.length - 1],
      ospd_rss_idle_mb: Math.round(rssIdle / 1048576), ospd_rss_peak_mb: Math.round(rssPeak / 1048576),
    };
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
    rmSync(credsFile, { force: true });
    // The next scenario's ospd must not compete with this one's shutdown.
    await ospd.stop();
  }
}

const results = [];
for (const n of SIZES) results.push(await scenario(n, 'stream'));
if (POLL_AGENTS > 0) results.push(await scenario(POLL_AGENTS, 'poll'));
for (const r of results) process.stderr.write(`bench: ${JSON.stringify(r)}\n`);
const poll = results.find((r) => r.mode === 'poll');
console.log(JSON.stringify({
  benchmark: 'config-push', poll_interval_ms_requested: POLL_INTERVAL_MS, poll_interval_ms_used: poll?.poll_interval_ms_used ?? null, workers: WORKERS, results,
  p50_speedup_vs_polling: poll ? results.filter((r) => r.mode === 'stream').map((r) => ({ agents: r.agents, x: +(poll.p50_seconds / r.p50_seconds).toFixed(1) })) : [],
}, null, 2));
