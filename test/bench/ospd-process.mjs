// A real ospd (bin/ospd, built dist/) for the benchmarks: started in its own
// data dir on loopback, waited for until it writes admin.yaml, with gRPC
// clients for enrolling nodes and issuing their agent tokens.
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import YAML from 'yaml';
import { NodeServiceClient } from '../../dist/proto/gen/osp/v1/node.js';
import { ConfigServiceClient } from '../../dist/proto/gen/osp/v1/config.js';
import { StackServiceClient } from '../../dist/proto/gen/osp/v1/stack.js';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** ospd writes admin.yaml once it serves; a start slower than this is a failure. */
const START_TIMEOUT_MS = 120_000;
const CALL_TIMEOUT_MS = 120_000;

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

export function unary(client, method, req, md) {
  return new Promise((resolve, reject) =>
    client[method](req, md, { deadline: Date.now() + CALL_TIMEOUT_MS }, (e, r) => (e ? reject(e) : resolve(r))));
}

export async function pool(items, concurrency, fn) {
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

/**
 * Starts ospd with every listener off except gRPC and those `listenArgs`
 * turn back on (e.g. ['--mqtt-plain-listen', '127.0.0.1:1883']); `args` are
 * further flags (e.g. ['--stack-concurrency', '32']).
 */
export async function startOspd({ prefix = 'osp-bench-', listenArgs = [], args = [] } = {}) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const logFile = `${dataDir}.log`;
  const port = await freePort();
  const log = openSync(logFile, 'a');
  const off = { '--mqtt-listen': 'off', '--mqtt-plain-listen': 'off', '--http-listen': 'off', '--tftp-listen': 'off', '--dhcp-listen': 'off' };
  for (let i = 0; i + 1 < listenArgs.length; i += 2) off[listenArgs[i]] = listenArgs[i + 1];
  const proc = spawn(process.execPath, [path.join(repo, 'bin/ospd'), '--data-dir', dataDir, '--grpc-listen', `127.0.0.1:${port}`, '--log-level', 'warn',
    ...Object.entries(off).flat(), ...args], { stdio: ['ignore', log, log] });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      // Bounded: a shutdown that hangs is killed rather than holding the next run.
      if (await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]) === false) proc.kill('SIGKILL');
    }
  };
  const started = Date.now();
  let adminText = null;
  while (adminText === null && proc.exitCode === null && Date.now() - started < START_TIMEOUT_MS) {
    try {
      adminText = readFileSync(path.join(dataDir, 'admin.yaml'), 'utf8');
    } catch { await sleep(100); }
  }
  if (adminText === null) {
    await stop();
    throw new Error(`ospd did not start within ${START_TIMEOUT_MS} ms (exit code ${proc.exitCode}); see ${logFile}`);
  }
  const admin = YAML.parse(adminText);
  const creds = credentials.createSsl(Buffer.from(admin.ca));
  const md = new Metadata();
  md.set('authorization', `Bearer ${admin.token}`);
  const nodes = new NodeServiceClient(admin.server, creds);
  const configs = new ConfigServiceClient(admin.server, creds);
  // Unlimited: a page of a large stack's resources must not be cut at gRPC's 4 MiB default.
  const stacks = new StackServiceClient(admin.server, creds, { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
  return {
    proc, dataDir, logFile, nodes, configs, stacks, md,
    /** Enrols `names` as fake-driver nodes and returns each one's agent credentials. */
    async enrol(names) {
      for (let i = 0; i < names.length; i += 2000) {
        const slice = names.slice(i, i + 2000).map((name) => ({ name, pm_type: 'fake' }));
        await unary(nodes, 'importNodes', { content: JSON.stringify({ nodes: slice }), source: 'bench' }, md);
      }
      return pool(names, 64, async (name) => {
        const r = await unary(configs, 'issueAgentToken', { id: name }, md);
        return { server: r.server, ca: r.caPem, node: r.node, token: r.token };
      });
    },
    async stop({ keep = false } = {}) {
      nodes.close();
      configs.close();
      stacks.close();
      await stop();
      if (!keep) {
        rmSync(dataDir, { recursive: true, force: true });
        rmSync(logFile, { force: true });
      }
    },
  };
}
