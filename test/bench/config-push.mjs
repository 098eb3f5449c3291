#!/usr/bin/env node
// Config propagation benchmark (issue 5): commit → acknowledgement latency
// across N connected agents, osp's push stream vs the os-collect-config model
// (each agent polls every 30 s), measured in the same run against one real
// ospd on loopback. Agents are the real transport code in worker processes,
// each with its own TLS connection; applying is stubbed. Prints JSON.
// Usage: node test/bench/config-push.mjs [--agents 1000,10000] [--poll-agents 1000] [--poll-interval-ms 30000]
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import YAML from 'yaml';
import { NodeServiceClient } from '../../dist/proto/gen/osp/v1/node.js';
import { ConfigServiceClient } from '../../dist/proto/gen/osp/v1/config.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, '..', '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const SIZES = arg('agents', '1000,10000').split(',').map(Number);
const POLL_AGENTS = Number(arg('poll-agents', '1000'));
const POLL_INTERVAL_MS = Number(arg('poll-interval-ms', '30000'));
const WORKERS = Number(arg('workers', '4'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function unary(client, method, req, md) {
  return new Promise((resolve, reject) =>
    client[method](req, md, { deadline: Date.now() + 120_000 }, (e, r) => (e ? reject(e) : resolve(r))));
}

async function pool(items, concurrency, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function scenario(n, mode) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'osp-bench-push-'));
  const port = await freePort();
  const log = openSync(`${dataDir}.log`, 'a');
  const ospd = spawn(process.execPath, [path.join(repo, 'bin/ospd'), '--data-dir', dataDir, '--grpc-listen', `127.0.0.1:${port}`, '--log-level', 'warn',
    // Only the gRPC API is under test; the other listeners stay off so nothing else competes for ports.
    '--mqtt-listen', 'off', '--mqtt-plain-listen', 'off', '--http-listen', 'off', '--tftp-listen', 'off', '--dhcp-listen', 'off'], { stdio: ['ignore', log, log] });
  const workers = [];
  try {
    for (let i = 0; i < 1200 && ospd.exitCode === null; i++) {
      try {
        readFileSync(path.join(dataDir, 'admin.yaml'));
        break;
      } catch { await sleep(100); }
    }
    if (ospd.exitCode !== null) throw new Error(`ospd exited with ${ospd.exitCode}; see ${dataDir}.log`);
    const admin = YAML.parse(readFileSync(path.join(dataDir, 'admin.yaml'), 'utf8'));
    const creds = credentials.createSsl(Buffer.from(admin.ca));
    const md = new Metadata();
    md.set('authorization', `Bearer ${admin.token}`);
    const nodes = new NodeServiceClient(admin.server, creds);
    const cfg = new ConfigServiceClient(admin.server, creds);
    const names = Array.from({ length: n }, (_, i) => `agent-${i}`);
    for (let i = 0; i < n; i += 2000) {
      const slice = names.slice(i, i + 2000).map((name) => ({ name, pm_type: 'fake' }));
      await unary(nodes, 'importNodes', { content: JSON.stringify({ nodes: slice }), source: 'bench' }, md);
    }
    const agentCreds = await pool(names, 64, async (name) => {
      const r = await unary(cfg, 'issueAgentToken', { id: name }, md);
      return { server: r.server, ca: r.caPem, node: r.node, token: r.token };
    });
    const credsFile = `${dataDir}.agents.json`;
    writeFileSync(credsFile, JSON.stringify(agentCreds));
    const per = Math.ceil(n / WORKERS);
    const connectStart = Date.now();
    for (let w = 0; w < WORKERS; w++) {
      const from = w * per;
      const to = Math.min(n, from + per);
      if (from >= to) continue;
      const child = fork(path.join(here, 'config-push-worker.mjs'), [credsFile, String(from), String(to), mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      workers.push({ child, ready: new Promise((res, rej) => child.on('message', (m) => (m.type === 'ready' ? res() : m.type === 'error' ? rej(new Error(m.message)) : undefined))) });
    }
    await Promise.all(workers.map((w) => w.ready));
    const connectSeconds = (Date.now() - connectStart) / 1000;
    const rssIdle = rssBytes(ospd.pid);

    // The change: one metadata commit per node, as fast as the API takes them.
    const commitStart = Date.now();
    const committed = await pool(names, 32, async (name) => {
      const r = await unary(cfg, 'setMetadata', { id: name, metadataJson: JSON.stringify({ ntp: { servers: ['192.0.2.1'] }, bench: commitStart }) }, md);
      return { node: name, createdAtMs: Date.parse(r.createdAt) };
    });
    const commitSeconds = (Date.now() - commitStart) / 1000;
    let rssPeak = rssBytes(ospd.pid);
    const deadline = Date.now() + (mode === 'poll' ? POLL_INTERVAL_MS * 2 + 30_000 : 180_000);
    let acks = [];
    while (Date.now() < deadline) {
      await sleep(1000);
      rssPeak = Math.max(rssPeak, rssBytes(ospd.pid));
      const reports = await Promise.all(workers.map((w) => new Promise((res) => {
        w.child.once('message', (m) => res(m));
        w.child.send({ type: 'report' });
      })));
      acks = reports.flatMap((r) => r.acks);
      process.stderr.write(`bench: ${mode} ${n}: ${acks.length} acked\n`);
      if (acks.length >= n) break;
    }
    const created = new Map(committed.map((c) => [c.node, c.createdAtMs]));
    const lat = acks.map((a) => (a.ackedAtMs - created.get(a.node)) / 1000).sort((a, b) => a - b);
    return {
      mode, agents: n, acked: acks.length, connect_seconds: connectSeconds, commit_seconds: commitSeconds,
      p50_seconds: pct(lat, 50), p99_seconds: pct(lat, 99), max_seconds: lat[lat.length - 1],
      ospd_rss_idle_mb: Math.round(rssIdle / 1048576), ospd_rss_peak_mb: Math.round(rssPeak / 1048576),
    };
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
    ospd.kill('SIGTERM');
    // The next scenario's ospd must not compete with this one's shutdown.
    await new Promise((r) => (ospd.exitCode !== null ? r() : ospd.once('exit', r)));
  }
}

const results = [];
for (const n of SIZES) results.push(await scenario(n, 'stream'));
if (POLL_AGENTS > 0) results.push(await scenario(POLL_AGENTS, 'poll'));
for (const r of results) process.stderr.write(`bench: ${JSON.stringify(r)}\n`);
const poll = results.find((r) => r.mode === 'poll');
console.log(JSON.stringify({
  benchmark: 'config-push', poll_interval_ms: POLL_INTERVAL_MS, workers: WORKERS, results,
  p50_speedup_vs_polling: poll ? results.filter((r) => r.mode === 'stream').map((r) => ({ agents: r.agents, x: +(poll.p50_seconds / r.p50_seconds).toFixed(1) })) : [],
}, null, 2));
