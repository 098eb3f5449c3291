/**
 * End to end: a QEMU machine (TCG, virtio NIC on a tap in the test's
 * namespace, QEMU's iPXE ROM) PXE-boots from osp's DHCP, fetches its iPXE
 * script over HTTP, then the ramdisk over HTTP (first run) or TFTP (second
 * run), and the ramdisk prints a marker on the serial console.
 * The kernel is Debian's linux-image-amd64, fetched once with apt-get download
 * into the gitignored .tmp/pxe-e2e; the initramfs (busybox + /init) is built here.
 * iPXE waits ~13 s for IPv6 router advertisements that never come on this
 * link before it boots; the per-boot deadline allows for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PxeServices } from '../../server/pxe/services.js';
import { MemoryBootLog, MemoryDirectory, MemoryLeaseStore } from '../../server/pxe/memory.js';
import { createLan, sh, type TestLan } from './netns.js';
import { waitFor } from '../harness/wait.js';

const CACHE = resolve('.tmp/pxe-e2e');
const MAC = '52:54:00:e2:e2:01';
const MARKER = 'OSP-PXE-E2E-MARKER';

function kernelPath(): string {
  mkdirSync(CACHE, { recursive: true });
  const vmlinuz = join(CACHE, 'vmlinuz');
  if (existsSync(vmlinuz)) return vmlinuz;
  const pkg = /Depends: (linux-image-\S+)/.exec(sh('apt-cache', ['depends', 'linux-image-amd64']))![1];
  if (!readdirSync(CACHE).some((f) => f.startsWith(pkg))) sh('sh', ['-c', `cd '${CACHE}' && apt-get download ${pkg}`], { timeoutMs: 300_000 });
  const deb = readdirSync(CACHE).find((f) => f.startsWith(pkg) && f.endsWith('.deb'))!;
  const x = join(CACHE, 'x');
  sh('dpkg-deb', ['-x', join(CACHE, deb), x], { timeoutMs: 120_000 });
  const boot = readdirSync(join(x, 'boot')).find((f) => f.startsWith('vmlinuz-'))!;
  copyFileSync(join(x, 'boot', boot), vmlinuz);
  rmSync(x, { recursive: true, force: true });
  return vmlinuz;
}

function buildInitramfs(dir: string): string {
  const root = join(dir, 'initramfs');
  for (const d of ['bin', 'proc', 'sys', 'dev', 'lib/x86_64-linux-gnu', 'lib64']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  // Dynamically linked busybox: carry its libraries (ldd names them).
  for (const m of sh('ldd', ['/usr/bin/busybox']).matchAll(/(\/\S+\.so[.\d]*)/g)) {
    const target = join(root, m[1]);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(m[1], target);
  }
  writeFileSync(join(root, 'init'), `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "${MARKER} cmdline: $(/bin/busybox cat /proc/cmdline)"
/bin/busybox poweroff -f
`);
  chmodSync(join(root, 'init'), 0o755);
  const out = join(dir, 'initramfs.gz');
  sh('sh', ['-c', `cd '${root}' && find . | cpio -o -H newc --quiet | gzip -1 > '${out}'`], { timeoutMs: 60_000 });
  return out;
}

let lan: TestLan;
let work: string;
let tap: string;
const procs: ChildProcess[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'osp-e2e-'));
  const kernel = kernelPath();
  const initrd = buildInitramfs(work);
  for (const d of ['tftp', 'http']) {
    mkdirSync(join(work, d));
    copyFileSync(kernel, join(work, d, 'ramdisk.kernel'));
    copyFileSync(initrd, join(work, d, 'ramdisk.initramfs'));
  }
  lan = createLan({ bridge: true });
  tap = `opt${lan.hostIf.slice(3)}`;
  sh('ip', ['-n', lan.ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  sh('ip', ['-n', lan.ns, 'link', 'set', tap, 'master', lan.nsIf, 'up']);
}, 600_000);

afterAll(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  lan?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function bootOnce(via: 'http' | 'tftp'): Promise<{ serial: string; bootLog: MemoryBootLog; services: PxeServices }> {
  const bootLog = new MemoryBootLog();
  const directory = new MemoryDirectory([{ uuid: 'e2e-node', name: 'e2e', provisionState: 'inspect wait', macs: [MAC] }]);
  const tftpPort = 20_000 + Math.floor(Math.random() * 20_000);
  const httpPort = tftpPort + 1;
  const httpBaseUrl = `http://${lan.serverIp}:${httpPort}`;
  const services = new PxeServices({
    dhcp: {
      mode: 'full', interfaceName: lan.hostIf, discovery: false, range: { start: `${lan.prefix}.100`, end: `${lan.prefix}.110` },
      leaseTimeSec: 600, boot: { tftpServer: lan.serverIp, httpBaseUrl },
    },
    tftp: { listenHost: lan.serverIp, port: tftpPort, root: join(work, 'tftp') },
    http: {
      listenHost: lan.serverIp, port: httpPort, root: join(work, 'http'),
      boot: {
        httpBaseUrl, serverAddress: `${lan.serverIp}:6385`, caSha256: 'cd'.repeat(32), discovery: false,
        extraKernelArgs: 'console=ttyS0 panic=-1 quiet', ...(via === 'tftp' ? { ramdiskBaseUrl: `tftp://${lan.serverIp}:${tftpPort}` } : {}),
      },
    },
  }, { directory, leases: new MemoryLeaseStore(), bootLog });
  await services.start();
  let serial = '';
  try {
    const q = spawn('ip', ['netns', 'exec', lan.ns, 'qemu-system-x86_64', '-accel', 'tcg', '-m', '512', '-nodefaults', '-display', 'none',
      '-serial', 'stdio', '-no-reboot', '-boot', 'n', '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=n0,mac=${MAC}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(q);
    q.stdout!.on('data', (b: Buffer) => { serial += b.toString('latin1'); });
    q.stderr!.on('data', (b: Buffer) => { serial += b.toString('latin1'); });
    await waitFor(`${MARKER} on serial (via ${via})`, () => serial.includes(MARKER), { timeoutMs: 240_000, intervalMs: 250 }).catch((e: Error) => {
      throw new Error(`${e.message}\n--- serial ---\n${serial.slice(-3000)}`);
    });
    await waitFor('qemu exit', () => q.exitCode !== null || q.signalCode !== null, { timeoutMs: 30_000 }).catch(() => q.kill('SIGKILL'));
  } finally {
    await services.stop();
  }
  return { serial, bootLog, services };
}

describe('QEMU PXE boot end to end', () => {
  it('boots the ramdisk over HTTP', { timeout: 300_000 }, async () => {
    const { serial, bootLog, services } = await bootOnce('http');
    const line = serial.split('\n').find((l) => l.includes(`${MARKER} cmdline`))!;
    expect(line).toContain(`osp.server=${lan.serverIp}:6385`);
    expect(line).toContain(`osp.ca_sha256=${'cd'.repeat(32)}`);
    expect(line).toContain('osp.node_uuid=e2e-node');
    const events = bootLog.forMac(MAC).map((e) => `${e.service}:${e.event}`).reverse();
    expect(events).toEqual(expect.arrayContaining(['dhcp:DISCOVER → OFFER', 'dhcp:REQUEST → ACK', 'http:boot script served', 'http:GET /ramdisk.kernel', 'http:GET /ramdisk.initramfs']));
    expect(services.status().find((s) => s.service === 'http')!.counters.boot_script_ramdisk).toBe(1);
  });

  it('boots the ramdisk over TFTP', { timeout: 300_000 }, async () => {
    const { serial, bootLog } = await bootOnce('tftp');
    expect(serial).toContain(`${MARKER} cmdline`);
    const events = bootLog.forMac(MAC).map((e) => `${e.service}:${e.event}`);
    expect(events).toEqual(expect.arrayContaining(['tftp:RRQ completed']));
    expect(bootLog.forMac(MAC).filter((e) => e.service === 'tftp' && e.event === 'RRQ completed').map((e) => e.detail?.file)).toEqual(
      expect.arrayContaining(['ramdisk.kernel', 'ramdisk.initramfs']));
  });
});
