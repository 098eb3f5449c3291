/**
 * PXE through ospd itself: ospd runs in a server namespace with DHCP on its
 * veth, a client namespace on the other end runs busybox udhcpc and curl.
 * Both namespaces are created and removed here; no traffic leaves them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { OspdProcess, runProgram } from '../harness/ospd.js';
import { sh } from '../pxe/netns.js';
import { waitFor } from '../harness/wait.js';

const id = randomBytes(3).toString('hex');
const SRV = `ospsrv-${id}`;
const CLI = `ospcli-${id}`;
const SRV_IF = `ops${id}`;
const CLI_IF = `opc${id}`;
const prefix = `10.214.${16 + (randomBytes(1)[0] % 200)}`;
const SERVER_IP = `${prefix}.1`;
const CLIENT_MAC = '52:54:00:5e:00:01';
const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-pxe-e2e-'));
const children: ChildProcess[] = [];

const inCli = (cmd: string, args: string[], timeoutMs = 30_000) => runProgram('ip', ['netns', 'exec', CLI, cmd, ...args], { timeoutMs });
const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);

function udhcpc(log: string, mac: string): ChildProcess {
  const script = path.join(dir, 'udhcpc.sh');
  writeFileSync(script, '#!/bin/sh\necho "$1 ip=$ip mask=$mask router=$router boot_file=$boot_file serverid=$serverid" >> "$LOGFILE"\ncase "$1" in bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;; deconfig) ip addr flush dev "$interface" ;; esac\n');
  chmodSync(script, 0o755);
  sh('ip', ['-n', CLI, 'link', 'set', CLI_IF, 'address', mac]);
  const c = spawn('ip', ['netns', 'exec', CLI, 'env', `LOGFILE=${log}`, 'busybox', 'udhcpc', '-f', '-i', CLI_IF, '-s', script,
    '-t', '5', '-T', '1', '-A', '1', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000'], { stdio: 'ignore' });
  children.push(c);
  return c;
}

describe('PXE through ospd: DHCP in a namespace, HTTP boot script, TFTP, boot log, leases that survive a restart', () => {
  let ospd: OspdProcess;

  beforeAll(async () => {
    sh('ip', ['netns', 'add', SRV]);
    sh('ip', ['netns', 'add', CLI]);
    sh('ip', ['-n', SRV, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', CLI, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', SRV, 'link', 'add', SRV_IF, 'type', 'veth', 'peer', 'name', CLI_IF]);
    sh('ip', ['-n', SRV, 'link', 'set', CLI_IF, 'netns', CLI]);
    sh('ip', ['-n', SRV, 'addr', 'add', `${SERVER_IP}/24`, 'dev', SRV_IF]);
    sh('ip', ['-n', SRV, 'link', 'set', SRV_IF, 'up']);
    sh('ip', ['-n', CLI, 'link', 'set', CLI_IF, 'up']);
    ospd = new OspdProcess(undefined, [
      '--dhcp-interface', SRV_IF, '--dhcp-listen', '0.0.0.0:67', '--dhcp-range', `${prefix}.100,${prefix}.120`, '--dhcp-router', SERVER_IP,
      '--http-listen', '0.0.0.0:8080', '--tftp-listen', '0.0.0.0:69', '--kernel-args', 'console=ttyS0',
    ], ['ip', 'netns', 'exec', SRV]);
    await ospd.start();
    expect((await ospd.ctl(['node', 'create', '--name', 'pxe-0', '--driver', 'fake', '--port', CLIENT_MAC, '--property', `ipv4_address=${prefix}.77`])).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await ospd?.dispose();
    for (const ns of [CLI, SRV]) {
      try { sh('ip', ['netns', 'del', ns]); } catch { /* already gone */ }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('a known machine gets its static address and the PXE boot file from ospd, recorded in its boot log', async () => {
    const log = path.join(dir, 'known.log');
    udhcpc(log, CLIENT_MAC);
    const bound = await waitFor('lease', () => lines(log).find((l) => l.startsWith('bound')), { timeoutMs: 30_000 });
    // The node's static address, outside the dynamic pool.
    expect(bound).toContain(`ip=${prefix}.77 `);
    expect(bound).toContain(`router=${SERVER_IP}`);
    expect(bound).toContain('boot_file=undionly.kpxe');
    const leases = JSON.parse((await ospd.ctl(['pxe', 'leases', '-f', 'json'])).stdout);
    expect(leases).toEqual([expect.objectContaining({ mac: CLIENT_MAC, node: 'pxe-0', ipv4_address: /ip=(\S+)/.exec(bound)![1] })]);
  });

  it('serves the iPXE script by node state over HTTP and the iPXE binary over TFTP, byte for byte', async () => {
    const script = await inCli('curl', ['-sf', `http://${SERVER_IP}:8080/boot.ipxe?mac=${CLIENT_MAC}`]);
    expect(script.code).toBe(0);
    expect(script.stdout).toMatch(/^#!ipxe/);
    expect(script.stdout).toContain('node pxe-0 is enroll: booting from the local disk');
    const out = path.join(dir, 'undionly.kpxe');
    const t = await inCli('curl', ['-sf', '-o', out, `tftp://${SERVER_IP}/undionly.kpxe`]);
    expect(t.code).toBe(0);
    expect(readFileSync(out).equals(readFileSync('/usr/lib/ipxe/undionly.kpxe'))).toBe(true);
    const metrics = await inCli('curl', ['-sf', `http://${SERVER_IP}:8080/metrics`]);
    expect(metrics.stdout).toMatch(/^# HELP ospd_/m);
    const boot = JSON.parse((await ospd.ctl(['node', 'boot-log', 'pxe-0', '-f', 'json'])).stdout) as { service: string; event: string }[];
    const seen = new Set(boot.map((e) => e.service));
    expect([...seen].sort()).toEqual(['dhcp', 'http', 'tftp']);
    expect(boot.map((e) => e.event)).toEqual(expect.arrayContaining(['DISCOVER → OFFER', 'REQUEST → ACK', 'boot script served']));
  });

  it('says whether the ramdisk is in place', async () => {
    const before = JSON.parse((await ospd.ctl(['pxe', 'status', '-f', 'json'])).stdout);
    expect(before.ramdisk.kernel_present).toBe(false);
    expect(before.services.map((s: { service: string }) => s.service).sort()).toEqual(['dhcp', 'http', 'tftp']);
    expect(before.services.find((s: { service: string }) => s.service === 'dhcp').running).toBe(true);
    writeFileSync(before.ramdisk.kernel_path, 'kernel');
    writeFileSync(before.ramdisk.initramfs_path, 'initramfs');
    const after = JSON.parse((await ospd.ctl(['pxe', 'status', '-f', 'json'])).stdout);
    expect([after.ramdisk.kernel_present, after.ramdisk.initramfs_present]).toEqual([true, true]);
  });

  it('ignores an unknown MAC while discovery is off, and keeps leases across a restart', async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    const log = path.join(dir, 'unknown.log');
    udhcpc(log, '52:54:00:5e:00:99');
    // Once ospd has counted the request as ignored it has decided not to offer; no lease can follow.
    await waitFor('the unknown MAC counted as ignored', async () => {
      const status = JSON.parse((await ospd.ctl(['pxe', 'status', '-f', 'json'])).stdout);
      const counters = status.services.find((s: { service: string }) => s.service === 'dhcp').counters;
      return Object.entries(counters).some(([k, v]) => /unknown|ignored/i.test(k) && (v as number) > 0);
    }, { timeoutMs: 20_000, intervalMs: 500 });
    expect(lines(log).find((l) => l.startsWith('bound'))).toBeUndefined();
    expect(await ospd.stop()).toBe(0);
    await ospd.start();
    const leases = JSON.parse((await ospd.ctl(['pxe', 'leases', '-f', 'json'])).stdout);
    expect(leases.map((l: { mac: string }) => l.mac)).toEqual([CLIENT_MAC]);
  }, 60_000);
});
