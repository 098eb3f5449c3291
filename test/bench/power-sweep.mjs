#!/usr/bin/env node
// Power-state sweep benchmark: 1,000 BMCs served by the Redfish simulator on
// loopback, one full sweep through PowerSync + RedfishDriver with their
// default concurrency, against a naive sequential sweep in the same run.
// Run after `npm run build`:  node test/bench/power-sweep.mjs [--bmcs N]
// Prints one JSON object.
import { request, Agent } from 'node:https';
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { RedfishSimulator } from '../../dist/lab/redfish-sim/simulator.js';
import { generateSelfSignedCert } from '../../dist/lab/redfish-sim/tls.js';
import { RedfishDriver } from '../../dist/server/bmc/redfish.js';
import { FakeDriver } from '../../dist/server/bmc/fake.js';
import { DriverRegistry } from '../../dist/server/bmc/registry.js';
import { PowerSync } from '../../dist/server/bmc/sync.js';
import { MemoryPowerSyncStore } from '../../dist/server/bmc/sync-memory-store.js';

const { values } = parseArgs({ options: { bmcs: { type: 'string', default: '1000' } } });
const BMCS = Number(values.bmcs);
// The DMTF mockup kept in the repository (test/fixtures/SOURCES.md).
const MOCKUP = decodeURIComponent(new URL('../fixtures/redfish/public-catfish', import.meta.url).pathname);
const PASSWORD = 'bench-pw';

const cert = await generateSelfSignedCert();
const sims = [];
for (let i = 0; i < BMCS; i++) {
  const s = new RedfishSimulator({ mockupDir: MOCKUP, cert, username: 'admin', password: PASSWORD });
  await s.start();
  sims.push(s);
}
const served = () => sims.reduce((n, s) => n + s.requestCount, 0);

// Anchor: what a simple script does - one BMC after the other, a new TLS
// connection per request, Basic auth, walking ServiceRoot -> Systems -> system.
function naiveGet(port, path) {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path, method: 'GET', agent: new Agent({ keepAlive: false }), rejectUnauthorized: false,
      headers: { Authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
    });
    req.on('error', reject);
    req.end();
  });
}
let before = served();
let t0 = performance.now();
let naiveOn = 0;
for (const s of sims) {
  const root = await naiveGet(s.port, '/redfish/v1');
  const coll = await naiveGet(s.port, root.Systems['@odata.id']);
  const sys = await naiveGet(s.port, coll.Members[0]['@odata.id']);
  if (sys.PowerState === 'On') naiveOn++;
}
const naive = { sweepSeconds: (performance.now() - t0) / 1000, requestsPerNode: (served() - before) / BMCS, nodesOn: naiveOn };

// osp: PowerSync with its defaults (concurrency, jitter) over the redfish driver's defaults.
const store = new MemoryPowerSyncStore();
sims.forEach((s, i) => store.add({ uuid: `n-${i}`, driver: 'redfish', driverInfo: { address: '127.0.0.1', port: s.port, username: 'admin', password: PASSWORD, verify_ca: false } }));
const registry = new DriverRegistry();
registry.register(new RedfishDriver());
registry.register(new FakeDriver());
const sync = new PowerSync(store, registry, store);
const sweeps = [];
for (const label of ['cold', 'warm']) {
  before = served();
  t0 = performance.now();
  const r = await sync.sweep();
  sweeps.push({
    sweep: label, sweepSeconds: (performance.now() - t0) / 1000, requestsPerNode: (served() - before) / BMCS,
    ok: r.ok, failed: r.failed,
  });
}
const nodesOn = [...store.nodes.values()].filter((n) => n.powerState === 'on').length;

await registry.stop();
await Promise.all(sims.map((s) => s.stop()));
const warm = sweeps[1];
process.stdout.write(`${JSON.stringify({
  benchmark: 'power-sweep', bmcs: BMCS, mockup: 'public-catfish', transport: 'https loopback',
  osp: { concurrency: sync.options.concurrency, jitterMs: sync.options.jitterMs, sweeps, nodesOn },
  naiveSequential: naive,
  speedupWarmVsNaive: naive.sweepSeconds / warm.sweepSeconds,
}, null, 2)}\n`);
