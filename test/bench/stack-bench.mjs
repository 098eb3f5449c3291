#!/usr/bin/env node
// Stack engine benchmark (issue 12), JSON on stdout. One real ospd on loopback,
// a fleet of --nodes `active` fake-driver nodes whose agents are the real agent
// transport in worker processes (config-push-worker.mjs, mode `deploy`: each
// deployment "runs" for --script-ms and is acknowledged with results, as the
// agent's Deployer reports them). Measured in one run:
//  1. the floor: NodeConfigs.addDeployment over gRPC, one deployment per node,
//     until every agent acknowledged it (no engine);
//  2. stack create: a ResourceGroup of --nodes members, each a nested template
//     holding one OS::Heat::SoftwareDeployment on the node at its index in a
//     list parameter (given as parameter_defaults, as TripleO does); total time,
//     the agents' own script time (wall time during which at least one agent
//     was running a script), and the engine overhead (create − agents);
//  3. `stack show` (GetStack) and `resource list` (ListStackResources, every
//     page, nested depth 2) latency at that size;
//  4. an update with the same template and parameters: time to
//     UPDATE_COMPLETE and the revisions committed / deployments re-run during it.
// Goals: create overhead < 60 s, show < 1 s, no-op update < 5 s re-running nothing.
// Needs `npm run build` first.
//
//   node test/bench/stack-bench.mjs [--nodes 1000] [--script-ms 0] [--workers 4]
//        [--stack-concurrency N] [--reps 7]
import { fork } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import sqlite3 from 'sqlite3';
import { HeatStatus } from '../../dist/proto/gen/osp/v1/stack.js';
import { benchArgs } from './bench-args.mjs';
import { pool, startOspd, unary } from './ospd-process.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const { arg, intArg } = benchArgs('stack-bench');
const NODES = intArg('nodes', '1000', 1, 100_000);
const SCRIPT_MS = intArg('script-ms', '0', 0, 600_000);
const WORKERS = intArg('workers', '4', 1, 64);
const REPS = intArg('reps', '7', 1, 1000);
const STACK_CONCURRENCY = arg('stack-concurrency', '');
if (STACK_CONCURRENCY !== '') intArg('stack-concurrency', '', 1, 1_000_000);
/** How often completion is polled with GetStack: the resolution of the create and update times. */
const POLL_MS = 100;
const STACK = 'bench';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const seconds = (ms) => +(ms / 1000).toFixed(3);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

const SCRIPT = '#!/bin/sh\necho configured\n';
const TOP = `heat_template_version: wallaby
description: stack benchmark, one deployment per node
parameters:
  count: {type: number}
resources:
  config:
    type: OS::Heat::SoftwareConfig
    properties:
      group: script
      config: ${JSON.stringify(SCRIPT)}
  nodes:
    type: OS::Heat::ResourceGroup
    properties:
      count: {get_param: count}
      resource_def:
        type: member.yaml
        properties:
          index: '%index%'
          config: {get_resource: config}
`;
const MEMBER = `heat_template_version: wallaby
parameters:
  index: {type: number}
  config: {type: string}
  servers: {type: comma_delimited_list}
resources:
  deployment:
    type: OS::Heat::SoftwareDeployment
    properties:
      config: {get_param: config}
      server: {get_param: [servers, {get_param: index}]}
`;

/** The same request for create and update: nothing in it changes between the two. */
function stackRequest(names) {
  const env = `parameter_defaults:\n  servers: ${JSON.stringify(names.join(','))}\n`;
  return {
    stack: STACK,
    files: { 'top.yaml': Buffer.from(TOP), 'member.yaml': Buffer.from(MEMBER), 'env.yaml': Buffer.from(env) },
    template: 'top.yaml',
    environments: ['env.yaml'],
    parameters: { count: String(names.length) },
    timeoutMs: 0n,
    dryRun: false,
  };
}

/** The fleet is already deployed: its nodes are marked active in ospd's store, as a finished deploy leaves them. */
async function markActive(dataDir) {
  const db = new sqlite3.Database(path.join(dataDir, 'ospd.sqlite'));
  try {
    await new Promise((res, rej) => db.exec("PRAGMA busy_timeout = 5000; UPDATE nodes SET provision_state = 'active'", (e) => (e ? rej(e) : res())));
  } finally {
    await new Promise((res) => db.close(res));
  }
}

function startAgents(credsFile, n) {
  const per = Math.ceil(n / WORKERS);
  const workers = [];
  for (let w = 0; w < WORKERS; w++) {
    const from = w * per;
    const to = Math.min(n, from + per);
    if (from >= to) continue;
    const child = fork(path.join(here, 'config-push-worker.mjs'), [credsFile, String(from), String(to), 'deploy', String(SCRIPT_MS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    workers.push({ child, ready: new Promise((res, rej) => child.on('message', (m) => (m.type === 'ready' ? res(m) : m.type === 'error' ? rej(new Error(m.message)) : undefined))) });
  }
  return workers;
}

/** Every ack and every simulated script run so far, from all workers. */
async function report(workers) {
  const reports = await Promise.all(workers.map((w) => new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`stack-bench: agent worker ${w.child.pid} did not report within 30 s`)), 30_000);
    w.child.once('message', (m) => { clearTimeout(t); res(m); });
    w.child.send({ type: 'report' });
  })));
  return { acks: reports.flatMap((r) => r.acks), runs: reports.flatMap((r) => r.runs) };
}

/** Wall time during which at least one agent was running a script, within [fromMs, toMs]. */
function scriptWallMs(runs, fromMs, toMs) {
  const spans = runs.map(([a, b]) => [Math.max(a, fromMs), Math.min(b, toMs)]).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (a > end) { total += b - a; end = b; } else if (b > end) { total += b - end; end = b; }
  }
  return total;
}

async function waitForStatus(ospd, want, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stack } = await unary(ospd.stacks, 'getStack', { stack: STACK }, ospd.md);
    if (stack.status === HeatStatus[`HEAT_STATUS_${want}`]) return stack;
    if (/_FAILED$/.test(HeatStatus[stack.status])) throw new Error(`stack-bench: stack ${STACK} is ${HeatStatus[stack.status]}: ${stack.statusReason}`);
    if (Date.now() > deadline) throw new Error(`stack-bench: stack ${STACK} not ${want} within ${timeoutMs} ms (${HeatStatus[stack.status]}, ${stack.resourcesComplete}/${stack.resourcesTotal})`);
    await sleep(POLL_MS);
  }
}

/** Config revisions committed so far, summed over the fleet. */
async function revisionsCommitted(ospd) {
  const r = await unary(ospd.configs, 'listConfigStatus', { id: '' }, ospd.md);
  return r.nodes.reduce((sum, n) => sum + Number(n.latestRevision), 0);
}

async function latency(fn) {
  const ms = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { median_ms: Math.round(pct(ms, 50)), p95_ms: Math.round(pct(ms, 95)), calls: REPS };
}

async function allResources(ospd) {
  const out = [];
  let marker = '';
  do {
    const r = await unary(ospd.stacks, 'listStackResources', { stack: STACK, nestedDepth: 2, limit: 0, marker }, ospd.md);
    out.push(...r.resources);
    marker = r.nextMarker;
  } while (marker);
  return out;
}

async function run() {
  const ospd = await startOspd({ prefix: 'osp-bench-stack-', args: STACK_CONCURRENCY ? ['--stack-concurrency', STACK_CONCURRENCY] : [] });
  const credsFile = `${ospd.dataDir}.agents.json`;
  let workers = [];
  try {
    const names = Array.from({ length: NODES }, (_, i) => `node-${i}`);
    writeFileSync(credsFile, JSON.stringify(await ospd.enrol(names)));
    await markActive(ospd.dataDir);
    workers = startAgents(credsFile, NODES);
    await Promise.all(workers.map((w) => w.ready));
    process.stderr.write(`bench: ${NODES} agents connected\n`);

    // 1. The floor: the same number of deployments pushed straight into the nodes' documents.
    const directStart = Date.now();
    const deployment = { name: 'bench-direct', group: 'script', config: SCRIPT, inputs: [], optionsJson: '' };
    const directRevs = await pool(names, 32, async (name) => (await unary(ospd.configs, 'addDeployment', { id: name, deployment }, ospd.md)).revision);
    const directCommitMs = Date.now() - directStart;
    const want = new Map(names.map((n, i) => [n, Number(directRevs[i])]));
    let base;
    for (;;) {
      base = await report(workers);
      if (base.acks.filter((a) => a.revision >= want.get(a.node) && a.ran > 0).length >= NODES) break;
      if (Date.now() - directStart > 300_000) throw new Error('stack-bench: direct deployments not all acknowledged within 300 s');
      await sleep(POLL_MS);
    }
    const directMs = Math.max(...base.acks.map((a) => a.ackedAtMs)) - directStart;
    process.stderr.write(`bench: direct addDeployment ×${NODES} acknowledged in ${seconds(directMs)} s\n`);

    // 2. Create.
    const request = stackRequest(names);
    const createStart = Date.now();
    await unary(ospd.stacks, 'createStack', request, ospd.md);
    const created = await waitForStatus(ospd, 'CREATE_COMPLETE', 3_600_000);
    const createEnd = Date.now();
    const afterCreate = await report(workers);
    const createAcks = afterCreate.acks.slice(base.acks.length);
    const agentsMs = scriptWallMs(afterCreate.runs, createStart, createEnd);
    const ran = createAcks.reduce((s, a) => s + a.ran, 0);
    process.stderr.write(`bench: create ${seconds(createEnd - createStart)} s, ${ran} deployments run\n`);

    // 3. Reads at this size.
    const show = await latency(() => unary(ospd.stacks, 'getStack', { stack: STACK }, ospd.md));
    let listed = 0;
    const list = await latency(async () => (listed = (await allResources(ospd)).length));

    // 4. An update that changes nothing.
    const revisionsBefore = await revisionsCommitted(ospd);
    const updateStart = Date.now();
    await unary(ospd.stacks, 'updateStack', request, ospd.md);
    await waitForStatus(ospd, 'UPDATE_COMPLETE', 600_000);
    const updateMs = Date.now() - updateStart;
    // Anything the update pushed would reach the agents within moments; give it that long before counting.
    await sleep(2000);
    const afterUpdate = await report(workers);
    const updateAcks = afterUpdate.acks.slice(afterCreate.acks.length);
    const updateRevisions = (await revisionsCommitted(ospd)) - revisionsBefore;

    return {
      benchmark: 'stack', nodes: NODES, script_ms: SCRIPT_MS, workers: WORKERS, stack_concurrency: STACK_CONCURRENCY === '' ? 'default' : Number(STACK_CONCURRENCY),
      shape: 'ResourceGroup of nested templates, one SoftwareDeployment each; server from a parameter_defaults list',
      direct_add_deployment: { seconds: seconds(directMs), commit_seconds: seconds(directCommitMs) },
      create: {
        seconds: seconds(createEnd - createStart), agents_script_seconds: seconds(agentsMs), engine_overhead_seconds: seconds(createEnd - createStart - agentsMs),
        vs_direct: +((createEnd - createStart) / directMs).toFixed(1), deployments_run: ran, acks: createAcks.length, resources_total: created.resourcesTotal,
        goal_overhead_seconds: 60,
      },
      stack_show: { ...show, goal_ms: 1000 },
      resource_list: { nested_depth: 2, resources: listed, ...list, goal_ms: 1000 },
      noop_update: { seconds: seconds(updateMs), revisions_committed: updateRevisions, acks: updateAcks.length, deployments_rerun: updateAcks.reduce((s, a) => s + a.ran, 0), goal_seconds: 5 },
      completion_poll_ms: POLL_MS,
    };
  } finally {
    for (const w of workers) w.child.kill('SIGKILL');
    rmSync(credsFile, { force: true });
    await ospd.stop({ keep: process.env.OSP_BENCH_KEEP === '1' });
  }
}

console.log(JSON.stringify(await run(), null, 2));
