#!/usr/bin/env node
// PXE benchmark (issue 4). Run after `npm run build`, as root:
//   node test/bench/pxe-bench.mjs
// Prints one JSON object. Peers measured in the same run with the same client:
//  - TFTP: a 64 MB file from osp vs tftpd-hpa (in.tftpd), curl at blksize 1468,
//    atftp at blksize 1468, and atftp with windowsize 16 (osp only: tftpd-hpa 5.2
//    does not implement RFC 7440). Loopback only.
//  - DHCP: DISCOVER→ACK 4-way exchange rate by perfdhcp (kea) against osp and
//    dnsmasq, each on its own veth pair to a namespace created and removed here.
//    osp runs twice: with in-memory stores, and with ospd's SQLite store (leases
//    and boot log on disk, as in production), since dnsmasq writes its lease file.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TftpServer } from '../../dist/server/pxe/tftp/server.js';
import { DhcpServer } from '../../dist/server/pxe/dhcp/server.js';
import { MemoryBootLog, MemoryDirectory, MemoryLeaseStore } from '../../dist/server/pxe/memory.js';
import { SqlitePxeStore } from '../../dist/server/store/pxe.js';
import { Database } from '../../dist/server/store/db.js';
import { migrate } from '../../dist/server/store/migrations.js';
import { silentLogger } from '../../dist/common/logging.js';

const SIZE_BYTES = 64 * 1024 * 1024;
const DHCP_SECONDS = Number(process.env.PXE_BENCH_DHCP_SECONDS ?? 5);
const DHCP_TARGET_RATE = Number(process.env.PXE_BENCH_DHCP_RATE ?? 2000);

function run(cmd, args, timeoutMs = 120_000) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (b) => { out += b; });
    c.stderr.on('data', (b) => { out += b; });
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code) => { clearTimeout(timer); resolve({ code, out, ms: Number(process.hrtime.bigint() - t0) / 1e6 }); });
  });
}
const sh = (...a) => execFileSync(a[0], a.slice(1), { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
const port = () => 30_000 + Math.floor(Math.random() * 20_000);

async function tftpBench(dir) {
  const root = join(dir, 'root');
  sh('mkdir', '-p', root);
  const data = randomBytes(SIZE_BYTES);
  writeFileSync(join(root, 'big.bin'), data);
  const want = createHash('sha256').update(data).digest('hex');
  const osp = new TftpServer({ listenHost: '127.0.0.1', port: 0, root }, new MemoryBootLog());
  await osp.start();
  const hpaPort = port();
  const hpa = spawn('in.tftpd', ['-L', '-s', '-a', `127.0.0.1:${hpaPort}`, root], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const servers = { osp: osp.address().port, 'tftpd-hpa': hpaPort };
  const clients = {
    'curl blksize 1468': (p, out) => ['curl', ['-sS', '--fail', '--tftp-blksize', '1468', '-o', out, `tftp://127.0.0.1:${p}/big.bin`]],
    'atftp blksize 1468': (p, out) => ['atftp', ['--option', 'blksize 1468', '-g', '-r', 'big.bin', '-l', out, '127.0.0.1', String(p)]],
    'atftp blksize 1468 windowsize 16': (p, out) => ['atftp', ['--option', 'blksize 1468', '--option', 'windowsize 16', '-g', '-r', 'big.bin', '-l', out, '127.0.0.1', String(p)]],
  };
  const results = [];
  try {
    for (const [client, make] of Object.entries(clients)) {
      for (const [server, p] of Object.entries(servers)) {
        if (server === 'tftpd-hpa' && client.includes('windowsize')) continue;
        const out = join(dir, 'out.bin');
        const [cmd, args] = make(p, out);
        const r = await run(cmd, args);
        const ok = r.code === 0 && sha(out) === want;
        results.push({ server, client, ok, ms: Math.round(r.ms), mbPerSec: ok ? +(SIZE_BYTES / 1048576 / (r.ms / 1000)).toFixed(1) : null });
        rmSync(out, { force: true });
      }
    }
  } finally {
    hpa.kill('SIGTERM');
    await osp.stop();
  }
  return { sizeBytes: SIZE_BYTES, results };
}

function parsePerfdhcp(out) {
  const rate = /Rate: ([\d.]+) 4-way exchanges\/second/.exec(out);
  const sent = [...out.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
  const recv = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
  return { exchangesPerSec: rate ? Number(rate[1]) : null, discoversSent: sent[0] ?? null, offersReceived: recv[0] ?? null, requestsSent: sent[1] ?? null, acksReceived: recv[1] ?? null };
}

async function dhcpBench() {
  const id = randomBytes(2).toString('hex');
  const nsClientOsp = `ospbench-c1-${id}`, nsClientDm = `ospbench-c2-${id}`, nsDm = `ospbench-dm-${id}`;
  const hostIf = `obh${id}`, c1If = `obc${id}`, dmIf = `obd${id}`, c2If = `obe${id}`;
  const perf = ['perfdhcp', '-4', '-r', String(DHCP_TARGET_RATE), '-R', '1000000', '-p', String(DHCP_SECONDS)];
  const cleanup = () => {
    for (const ns of [nsClientOsp, nsClientDm, nsDm]) { try { sh('ip', 'netns', 'del', ns); } catch { /* gone */ } }
    try { sh('ip', 'link', 'del', hostIf); } catch { /* gone */ }
  };
  let dnsmasq = null;
  let osp = null;
  try {
    for (const ns of [nsClientOsp, nsClientDm, nsDm]) sh('ip', 'netns', 'add', ns);
    // osp: this process on the host end of a veth; perfdhcp in a namespace.
    sh('ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', c1If);
    sh('ip', 'link', 'set', c1If, 'netns', nsClientOsp);
    sh('ip', 'addr', 'add', '10.213.240.1/16', 'dev', hostIf);
    sh('ip', 'link', 'set', hostIf, 'up');
    sh('ip', '-n', nsClientOsp, 'addr', 'add', '10.213.240.2/16', 'dev', c1If);
    sh('ip', '-n', nsClientOsp, 'link', 'set', c1If, 'up');
    // dnsmasq: its own namespace, veth to a second perfdhcp namespace.
    sh('ip', 'link', 'add', dmIf, 'type', 'veth', 'peer', 'name', c2If);
    sh('ip', 'link', 'set', dmIf, 'netns', nsDm);
    sh('ip', 'link', 'set', c2If, 'netns', nsClientDm);
    sh('ip', '-n', nsDm, 'addr', 'add', '10.213.240.1/16', 'dev', dmIf);
    sh('ip', '-n', nsDm, 'link', 'set', dmIf, 'up');
    sh('ip', '-n', nsClientDm, 'addr', 'add', '10.213.240.2/16', 'dev', c2If);
    sh('ip', '-n', nsClientDm, 'link', 'set', c2If, 'up');

    const dhcpConfig = {
      mode: 'full', interfaceName: hostIf, discovery: true, range: { start: '10.213.1.0', end: '10.213.200.255' }, leaseTimeSec: 3600,
      boot: { tftpServer: '10.213.240.1', httpBaseUrl: 'http://10.213.240.1:8080' },
    };
    osp = new DhcpServer(dhcpConfig, new MemoryDirectory(), new MemoryLeaseStore(), new MemoryBootLog());
    await osp.start();
    const ospRun = await run('ip', ['netns', 'exec', nsClientOsp, ...perf, '-l', c1If], (DHCP_SECONDS + 30) * 1000);
    const ospMemoryCounters = osp.status().counters;
    await osp.stop();

    const dbDir = mkdtempSync(join(tmpdir(), 'ospbench-db-'));
    const db = await Database.open(join(dbDir, 'ospd.sqlite'), silentLogger());
    await migrate(db, undefined, silentLogger());
    const store = new SqlitePxeStore(db, silentLogger());
    osp = new DhcpServer(dhcpConfig, store, store, store);
    await osp.start();
    const ospSqliteRun = await run('ip', ['netns', 'exec', nsClientOsp, ...perf, '-l', c1If], (DHCP_SECONDS + 30) * 1000);
    const ospSqliteCounters = osp.status().counters;
    await osp.stop();
    await store.stop();
    const leasesOnDisk = (await db.all('SELECT count(*) AS n FROM dhcp_leases'))[0].n;
    await db.close();
    rmSync(dbDir, { recursive: true, force: true });

    const dir = mkdtempSync(join(tmpdir(), 'ospbench-dm-'));
    dnsmasq = spawn('ip', ['netns', 'exec', nsDm, 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=${dmIf}`, '--bind-interfaces', '--no-ping',
      '--dhcp-range=10.213.1.0,10.213.200.255,255.255.0.0,1h', '--dhcp-lease-max=1000000', `--dhcp-leasefile=${join(dir, 'leases')}`, '--dhcp-authoritative', '--quiet-dhcp'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    const dmRun = await run('ip', ['netns', 'exec', nsClientDm, ...perf, '-l', c2If], (DHCP_SECONDS + 30) * 1000);
    rmSync(dir, { recursive: true, force: true });
    return {
      client: `perfdhcp ${perf.slice(1).join(' ')}`,
      ospMemoryStore: { ...parsePerfdhcp(ospRun.out), counters: ospMemoryCounters },
      ospSqliteStore: { ...parsePerfdhcp(ospSqliteRun.out), counters: ospSqliteCounters, leasesOnDisk },
      dnsmasq: parsePerfdhcp(dmRun.out),
    };
  } finally {
    if (dnsmasq) dnsmasq.kill('SIGTERM');
    if (osp) await osp.stop().catch(() => undefined);
    cleanup();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ospbench-'));
try {
  const tftp = await tftpBench(dir);
  const dhcp = await dhcpBench();
  console.log(JSON.stringify({ benchmark: 'pxe', node: process.version, tftp, dhcp }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
