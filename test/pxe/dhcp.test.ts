/**
 * DHCP against real clients (busybox udhcpc, ISC dhclient) and a real
 * neighbour server (dnsmasq), in namespaces created and removed here.
 * The osp server runs in this process on the host end of a veth pair.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { DhcpServer, type DhcpConfig } from '../../server/pxe/dhcp/server.js';
import { MemoryBootLog, MemoryDirectory, MemoryLeaseStore } from '../../server/pxe/memory.js';
import { addMachine, createLan, run, sh, type TestLan } from './netns.js';
import { waitFor } from '../harness/wait.js';
import { corpus } from './dhcp-corpus.js';

const KNOWN_MAC = '52:54:00:aa:00:01';
const STATIC_MAC = '52:54:00:aa:00:02';
const UNKNOWN_MAC = '52:54:00:aa:00:99';

let lan: TestLan;
let dir: string;
const cleanups: Array<() => void> = [];
const children: ChildProcess[] = [];

function udhcpcScript(): string {
  const p = join(dir, 'udhcpc.sh');
  writeFileSync(p, `#!/bin/sh
echo "$1 ip=$ip mask=$mask router=$router dns=$dns domain=$domain hostname=$hostname boot_file=$boot_file serverid=$serverid" >> "$LOGFILE"
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
`);
  chmodSync(p, 0o755);
  return p;
}

/** dhclient runs its script with a clean environment, so the log path is baked in. */
function dhclientScript(logFile: string): string {
  const p = `${logFile}.sh`;
  writeFileSync(p, `#!/bin/sh
echo "$reason ip=$new_ip_address router=$new_routers domain=$new_domain_name server=$new_dhcp_server_identifier file=$new_filename" >> '${logFile}'
case "$reason" in
  BOUND|RENEW|REBOOT) ip addr flush dev "$interface"; ip addr add "$new_ip_address/24" dev "$interface" ;;
esac
`);
  chmodSync(p, 0o755);
  return p;
}

/** dhclient daemonises once bound; its output goes to a file so our pipes close. */
async function dhclient(ns: string, logFile: string, args: string[]): Promise<void> {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  await run('ip', ['netns', 'exec', ns, 'sh', '-c', `exec dhclient ${args.map(q).join(' ')} >>${q(logFile + '.out')} 2>&1`], { timeoutMs: 30_000 });
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}

function spawnIn(ns: string, args: string[]): ChildProcess {
  const c = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  return c;
}

function baseConfig(l: TestLan, over: Partial<DhcpConfig> = {}): DhcpConfig {
  return {
    mode: 'full', interfaceName: l.hostIf, discovery: false,
    range: { start: `${l.prefix}.100`, end: `${l.prefix}.120` }, router: `${l.prefix}.1`, dns: [`${l.prefix}.53`],
    domain: 'prov.test', leaseTimeSec: 120,
    boot: { tftpServer: l.serverIp, httpBaseUrl: `http://${l.serverIp}:8080` },
    ...over,
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'osp-dhcp-'));
  lan = createLan({ bridge: true });
});

afterAll(() => {
  if (process.env.OSP_TEST_KEEP_LOGS) console.log(sh('sh', ['-c', `tail -n +1 ${dir}/*.log ${dir}/*.out`]));
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const f of cleanups.reverse()) f();
  lan?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('DHCP full mode', () => {
  let server: DhcpServer;
  let leases: MemoryLeaseStore;
  let bootLog: MemoryBootLog;

  beforeAll(async () => {
    leases = new MemoryLeaseStore();
    bootLog = new MemoryBootLog();
    const directory = new MemoryDirectory([
      { uuid: 'n1', name: 'node-1', provisionState: 'manageable', macs: [KNOWN_MAC] },
      { uuid: 'n2', name: 'node-2', provisionState: 'active', macs: [STATIC_MAC], ipv4Address: `${lan.prefix}.77` },
    ]);
    server = new DhcpServer(baseConfig(lan), directory, leases, bootLog);
    await server.start();
    cleanups.push(() => void server.stop());
  });

  afterAll(() => {
    if (process.env.OSP_TEST_KEEP_LOGS) console.log(JSON.stringify(server.status()), JSON.stringify(bootLog.entries));
  });

  it('udhcpc obtains a lease with router, DNS and domain, renews it and releases it', async () => {
    const m = addMachine(lan, 'u', KNOWN_MAC);
    cleanups.push(m.destroy);
    const log = join(dir, 'udhcpc-full.log');
    const c = spawnIn(m.ns, ['env', `LOGFILE=${log}`, 'busybox', 'udhcpc', '-f', '-i', m.ifName, '-s', udhcpcScript(), '-t', '5', '-T', '1', '-A', '1',
      '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000']);
    const bound = await waitFor('udhcpc bound', () => lines(log).find((l) => l.startsWith('bound')), { timeoutMs: 20_000 });
    expect(bound).toMatch(new RegExp(`ip=${lan.prefix.replace(/\./g, '\\.')}\\.(10\\d|11\\d|120) `));
    expect(bound).toContain(`router=${lan.prefix}.1`);
    expect(bound).toContain(`dns=${lan.prefix}.53`);
    expect(bound).toContain('domain=prov.test');
    expect(bound).toContain('hostname=node-1');
    expect(bound).toContain('boot_file=undionly.kpxe');
    const ip = /ip=(\S+)/.exec(bound)![1];
    expect((await leases.list()).map((l) => [l.mac, l.ipv4Address])).toEqual([[KNOWN_MAC, ip]]);

    c.kill('SIGUSR1'); // busybox udhcpc: renew now (unicast REQUEST with ciaddr)
    const renew = await waitFor('udhcpc renew', () => lines(log).find((l) => l.startsWith('renew')), { timeoutMs: 15_000 });
    expect(renew).toContain(`ip=${ip} `);

    const releasesBefore = server.status().counters.release ?? 0;
    c.kill('SIGUSR2'); // release
    await waitFor('RELEASE handled', () => (server.status().counters.release ?? 0) > releasesBefore, { timeoutMs: 10_000 });
    await waitFor('lease removed', () => server.status().leases === 0, { timeoutMs: 15_000 });
    expect(await leases.list()).toEqual([]);
    c.kill('SIGTERM');
    const events = bootLog.forMac(KNOWN_MAC).map((e) => e.event);
    expect(events).toEqual(expect.arrayContaining(['DISCOVER → OFFER', 'REQUEST → ACK', 'RELEASE']));
  });

  it('dhclient gets the static address of its node, reboots into it and releases', async () => {
    const m = addMachine(lan, 'd', STATIC_MAC);
    cleanups.push(m.destroy);
    const log = join(dir, 'dhclient.log');
    const lf = join(dir, 'dhclient.leases');
    const pf = join(dir, 'dhclient.pid');
    const args = ['-1', '-v', '-lf', lf, '-pf', pf, '-sf', dhclientScript(log), m.ifName];
    await dhclient(m.ns, log, args);
    expect(lines(log).find((l) => l.startsWith('BOUND'))).toContain(`ip=${lan.prefix}.77 `);
    // Second run starts from the lease file: INIT-REBOOT (REQUEST without server id).
    await run('ip', ['netns', 'exec', m.ns, 'dhclient', '-x', '-pf', pf, m.ifName], { timeoutMs: 15_000 });
    await dhclient(m.ns, log, args);
    expect(lines(log).some((l) => /^(REBOOT|BOUND) ip=.*\.77 /.test(l) && l !== lines(log)[0])).toBe(true);
    expect((await leases.list()).find((l) => l.mac === STATIC_MAC)?.ipv4Address).toBe(`${lan.prefix}.77`);
    const releasesBefore = server.status().counters.release ?? 0;
    await run('ip', ['netns', 'exec', m.ns, 'dhclient', '-r', '-lf', lf, '-pf', pf, '-sf', dhclientScript(log), m.ifName], { timeoutMs: 15_000 });
    await waitFor('RELEASE handled', () => (server.status().counters.release ?? 0) > releasesBefore, { timeoutMs: 15_000 });
    expect((await leases.list()).some((l) => l.mac === STATIC_MAC)).toBe(false);
  });

  it('ignores an unknown MAC while discovery is off', async () => {
    const m = addMachine(lan, 'x', UNKNOWN_MAC);
    cleanups.push(m.destroy);
    const before = server.status().counters.ignored_unknown_mac ?? 0;
    const log = join(dir, 'udhcpc-unknown.log');
    const r = await run('ip', ['netns', 'exec', m.ns, 'env', `LOGFILE=${log}`, 'busybox', 'udhcpc', '-n', '-q', '-f', '-i', m.ifName, '-s', udhcpcScript(), '-t', '3', '-T', '1'], { timeoutMs: 20_000 });
    expect(r.code).not.toBe(0);
    expect(lines(log).some((l) => l.startsWith('bound'))).toBe(false);
    expect(server.status().counters.ignored_unknown_mac).toBeGreaterThan(before);
    expect(bootLog.forMac(UNKNOWN_MAC)[0]?.event).toBe('DISCOVER ignored');
  });

  it('drops and counts a malformed corpus while still serving a good client', async () => {
    const sender = dgram.createSocket('udp4');
    const before = server.status().counters.dropped_malformed ?? 0;
    const m = addMachine(lan, 'g', KNOWN_MAC);
    cleanups.push(m.destroy);
    const log = join(dir, 'udhcpc-corpus.log');
    const c = spawnIn(m.ns, ['env', `LOGFILE=${log}`, 'busybox', 'udhcpc', '-f', '-q', '-i', m.ifName, '-s', udhcpcScript(), '-t', '10', '-T', '1']);
    for (let round = 0; round < 3; round++) {
      for (const pkt of corpus(KNOWN_MAC)) {
        await new Promise<void>((r) => sender.send(pkt.bytes, 67, '127.0.0.1', () => r()));
      }
    }
    await waitFor('good client bound', () => lines(log).find((l) => l.startsWith('bound')), { timeoutMs: 20_000 });
    await waitFor('udhcpc exit', () => c.exitCode !== null, { timeoutMs: 15_000 });
    sender.close();
    const n = corpus(KNOWN_MAC).length * 3;
    await waitFor('all corpus packets counted', () => (server.status().counters.dropped_malformed ?? 0) - before >= n, { timeoutMs: 15_000 });
    expect((server.status().counters.dropped_malformed ?? 0) - before).toBe(n);
    expect(server.status().running).toBe(true);
  });

  it('keeps leases across a restart (the store is the source of truth)', async () => {
    await server.stop();
    const store = new MemoryLeaseStore();
    await store.put({ mac: KNOWN_MAC, ipv4Address: `${lan.prefix}.115`, expiresAtMs: Date.now() + 60_000, state: 'bound' });
    const directory = new MemoryDirectory([{ uuid: 'n1', name: 'node-1', provisionState: 'manageable', macs: [KNOWN_MAC] }]);
    server = new DhcpServer(baseConfig(lan), directory, store, bootLog);
    await server.start();
    expect(server.status().leases).toBe(1);
    const m = addMachine(lan, 'r', KNOWN_MAC);
    cleanups.push(m.destroy);
    const log = join(dir, 'udhcpc-restart.log');
    const r = await run('ip', ['netns', 'exec', m.ns, 'env', `LOGFILE=${log}`, 'busybox', 'udhcpc', '-n', '-q', '-f', '-i', m.ifName, '-s', udhcpcScript(), '-t', '5', '-T', '1'], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(lines(log).find((l) => l.startsWith('bound'))).toContain(`ip=${lan.prefix}.115 `);
  });
});

describe('DHCP proxy mode beside dnsmasq', () => {
  it('dnsmasq hands out the address, osp the boot file, and osp ignores non-PXE clients', async () => {
    const dnsIp = `${lan.prefix}.2`;
    sh('ip', ['-n', lan.ns, 'addr', 'add', `${dnsIp}/24`, 'dev', lan.nsIf]);
    const dnsmasq = spawnIn(lan.ns, ['dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=${lan.nsIf}`, '--bind-interfaces',
      `--dhcp-range=${lan.prefix}.150,${lan.prefix}.160,255.255.255.0,2m`, `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--log-dhcp']);
    let dnsmasqErr = '';
    dnsmasq.stderr!.on('data', (b: Buffer) => { dnsmasqErr += b.toString(); });
    await waitFor('dnsmasq listening', () => dnsmasqErr.includes('DHCP, IP range'), { timeoutMs: 10_000 });

    const bootLog = new MemoryBootLog();
    const leases = new MemoryLeaseStore();
    const PXE_MAC = '52:54:00:bb:00:01';
    const PLAIN_MAC = '52:54:00:bb:00:02';
    const directory = new MemoryDirectory([{ uuid: 'p1', name: 'pxe-1', provisionState: 'inspect wait', macs: [PXE_MAC, PLAIN_MAC] }]);
    const server = new DhcpServer(baseConfig(lan, { mode: 'proxy', range: undefined, proxyPort: null }), directory, leases, bootLog);
    await server.start();
    cleanups.push(() => void server.stop());

    const m = addMachine(lan, 'p', PXE_MAC);
    cleanups.push(m.destroy);
    const conf = join(dir, 'dhclient-pxe.conf');
    // A PXE ROM's view: PXEClient vendor class, BIOS arch; it needs a subnet mask from whoever gives the address.
    writeFileSync(conf, 'send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";\nrequire subnet-mask;\n');
    const log = join(dir, 'dhclient-pxe.log');
    await dhclient(m.ns, log, ['-1', '-v', '-cf', conf, '-lf', join(dir, 'pxe.leases'), '-pf', join(dir, 'pxe.pid'), '-sf', dhclientScript(log), m.ifName]);
    const bound = lines(log).find((l) => l.startsWith('BOUND')) ?? readFileSync(log + '.out', 'utf8');
    expect(bound).toMatch(new RegExp(`ip=${lan.prefix.replace(/\./g, '\\.')}\\.15\\d `));
    expect(bound).toContain(`server=${dnsIp}`);
    await run('ip', ['netns', 'exec', m.ns, 'dhclient', '-x', '-pf', join(dir, 'pxe.pid'), m.ifName], { timeoutMs: 15_000 });
    const offer = bootLog.forMac(PXE_MAC).find((e) => e.event === 'DISCOVER → OFFER');
    expect(offer?.detail).toMatchObject({ mode: 'proxy', file: 'undionly.kpxe', client: 'bios' });
    expect(offer?.detail?.address).toBeUndefined();
    expect(await leases.list()).toEqual([]);

    const m2 = addMachine(lan, 'q', PLAIN_MAC);
    cleanups.push(m2.destroy);
    const log2 = join(dir, 'udhcpc-plain.log');
    await run('ip', ['netns', 'exec', m2.ns, 'env', `LOGFILE=${log2}`, 'busybox', 'udhcpc', '-n', '-q', '-f', '-i', m2.ifName, '-s', udhcpcScript(), '-t', '4', '-T', '1'], { timeoutMs: 20_000 });
    expect(lines(log2).find((l) => l.startsWith('bound'))).toContain(`serverid=${dnsIp}`);
    expect(server.status().counters.ignored_not_pxe).toBeGreaterThan(0);
    await server.stop();
    dnsmasq.kill('SIGTERM');
  });
});
