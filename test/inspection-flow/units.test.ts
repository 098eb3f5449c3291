import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { explainTimeout, type BootSteps } from '../../server/inspection/explain.js';
import { BootLogHistory, type BootLogRowView } from '../../server/inspection/boot-steps.js';
import { discoveredName, normaliseLookup } from '../../server/inspection/lookup.js';
import { CommandChannel, type Command } from '../../server/inspection/commands.js';
import { parseBootParams } from '../../agent/ramdisk/cmdline.js';
import { rootDisks, wipeDisk, MIB } from '../../agent/ramdisk/wipe.js';
import { fetchPinnedCa } from '../../agent/ramdisk/pin.js';
import { ensureServerTls } from '../../server/security/pki.js';

const SHA = 'ab'.repeat(32);

describe('timeout explanations', () => {
  const base = { waitState: 'inspect wait' as const, timeoutMs: 900_000, macs: ['52:54:00:00:00:01'], facts: { lookups: 0, streams: 0, inventory: false } };
  const boot = (b: Partial<BootSteps>): BootSteps => ({ dhcpRequest: true, addressOffered: true, bootScriptFetched: true, ramdiskFetched: true, ...b });

  it('names the first boot step that never happened, from the PXE boot log', () => {
    expect(explainTimeout({ ...base, boot: boot({ dhcpRequest: false, addressOffered: false, bootScriptFetched: false, ramdiskFetched: false }) }))
      .toBe("timed out after 15 min in 'inspect wait': no DHCP request from 52:54:00:00:00:01 (is the machine powered on, set to PXE boot, and on the provisioning network?)");
    expect(explainTimeout({ ...base, boot: boot({ addressOffered: false, bootScriptFetched: false, ramdiskFetched: false }) })).toMatch(/never answered with an address/);
    expect(explainTimeout({ ...base, boot: boot({ bootScriptFetched: false, ramdiskFetched: false }) })).toMatch(/got an address but never fetched the boot script$/);
    expect(explainTimeout({ ...base, boot: boot({ addressAcknowledged: false, bootScriptFetched: false, ramdiskFetched: false }) }))
      .toMatch(/ospd offered 52:54:00:00:00:01 an address but no REQUEST\/ACK followed/);
    expect(explainTimeout({ ...base, boot: boot({ ramdiskFetched: false }) })).toMatch(/fetched the boot script but never the ramdisk$/);
    expect(explainTimeout({ ...base, boot: boot({ ramdiskMissing: true, ramdiskFetched: false }) }))
      .toMatch(/asked for its boot script but ospd has no ramdisk in place \(see 'ospctl pxe status'/);
    expect(explainTimeout({ ...base, boot: boot({}) })).toMatch(/ramdisk fetched but the agent never called back$/);
  });

  it('without a boot log, says the agent never called back and that the log is missing', () => {
    expect(explainTimeout(base)).toMatch(/the ramdisk agent never called back \(no lookup from 52:54:00:00:00:01; no PXE boot log/);
    expect(explainTimeout({ ...base, macs: [] })).toMatch(/no ports registered/);
  });

  it('after a lookup: stream never opened, or connected without the report', () => {
    expect(explainTimeout({ ...base, facts: { lookups: 1, streams: 0, inventory: false } })).toMatch(/looked up its node but never opened its command stream/);
    expect(explainTimeout({ ...base, facts: { lookups: 1, streams: 2, inventory: false } })).toMatch(/agent connected but sent no inventory$/);
    expect(explainTimeout({ ...base, waitState: 'clean wait', facts: { lookups: 1, streams: 1, inventory: false, lastProgress: '40% wiping /dev/sda (metadata)' } }))
      .toMatch(/agent connected but never reported the cleaning result \(last progress: 40% wiping \/dev\/sda \(metadata\)\)$/);
  });
});

describe('boot log → boot steps', () => {
  const row = (time: string, service: string, event: string, detail: Record<string, unknown> = {}): BootLogRowView => ({ time, service, event, detail });
  const reader = (rows: BootLogRowView[]) => ({ bootLog: async () => [...rows].reverse() });
  const since = '2026-01-01T00:00:10.000Z';

  it('reads DHCP, boot script and ramdisk steps after the wait began, ignoring older boots', async () => {
    const rows = [
      row('2026-01-01T00:00:01.000Z', 'http', 'boot script served'),
      row('2026-01-01T00:00:11.000Z', 'dhcp', 'DISCOVER → OFFER', { address: '10.213.0.50' }),
      row('2026-01-01T00:00:12.000Z', 'dhcp', 'REQUEST → ACK'),
    ];
    const h = new BootLogHistory(reader(rows), () => true);
    expect(await h.stepsSince(['52:54:00:00:00:01'], since)).toEqual({ dhcpRequest: true, addressOffered: true, addressAcknowledged: true, bootScriptFetched: false, ramdiskMissing: false, ramdiskFetched: false });
    rows.push(row('2026-01-01T00:00:13.000Z', 'http', 'boot script served'), row('2026-01-01T00:00:14.000Z', 'http', 'GET /ramdisk.kernel', { status: 404 }));
    expect((await h.stepsSince([], since)).ramdiskFetched).toBe(false);
    rows.push(row('2026-01-01T00:00:15.000Z', 'tftp', 'RRQ done', { file: 'ramdisk.initramfs' }));
    expect(await h.stepsSince([], since)).toEqual({ dhcpRequest: true, addressOffered: true, addressAcknowledged: true, bootScriptFetched: true, ramdiskMissing: false, ramdiskFetched: true });
  });

  it('a boot script asked for while the ramdisk was missing counts as fetched, and is named', async () => {
    const steps = await new BootLogHistory(reader([row('2026-01-01T00:00:11.000Z', 'http', 'ramdisk missing', { kind: 'no-ramdisk' })]), () => false)
      .stepsSince(['52:54:00:00:00:01'], since);
    expect([steps.bootScriptFetched, steps.ramdiskMissing, steps.ramdiskFetched]).toEqual([true, true, false]);
  });

  it('with DHCP served elsewhere, DHCP steps are unknown and the explanation says so', async () => {
    const steps = await new BootLogHistory(reader([]), () => false).stepsSince(['52:54:00:00:00:01'], since);
    expect(steps).toEqual({ dhcpRequest: undefined, addressOffered: undefined, addressAcknowledged: undefined, bootScriptFetched: false, ramdiskMissing: false, ramdiskFetched: false });
    expect(explainTimeout({ waitState: 'inspect wait', timeoutMs: 60_000, macs: ['52:54:00:00:00:01'], facts: { lookups: 0, streams: 0, inventory: false }, boot: steps }))
      .toMatch(/52:54:00:00:00:01 never fetched the boot script \(ospd does not serve DHCP here/);
  });
});

describe('lookup input', () => {
  it('normalises MACs in any common notation and refuses bad ones naming them', () => {
    expect(normaliseLookup(['52-54-00-AA-BB-CC', '5254.00aa.bbcc', '52:54:00:aa:bb:01'], ' 10.0.0.5 ')).toEqual({ macs: ['52:54:00:aa:bb:cc', '52:54:00:aa:bb:01'], bmcAddress: '10.0.0.5' });
    expect(() => normaliseLookup(['52:54:00:aa:bb'], '')).toThrow(/macs: "52:54:00:aa:bb": expected a MAC address/);
    expect(() => normaliseLookup([], 'a b')).toThrow(/bmc_address: "a b": expected an IP address or host name/);
    expect(normaliseLookup([], '0.0.0.0').bmcAddress).toBe('');
  });

  it('names a discovered machine from its serial, skipping DMI placeholders, else from its first MAC', () => {
    expect(discoveredName('SN 4711/X', ['52:54:00:aa:bb:cc'])).toEqual(['sn-4711-x', 'mac-525400aabbcc']);
    expect(discoveredName('To Be Filled By O.E.M.', ['52:54:00:aa:bb:cc'])).toEqual(['mac-525400aabbcc']);
    expect(discoveredName('', [])).toEqual([]);
  });
});

describe('command channel', () => {
  it('keeps commands for a disconnected agent and delivers them on attach; close forgets them', () => {
    const ch = new CommandChannel();
    ch.send('n1', CommandChannel.make('inspect'));
    ch.send('n2', CommandChannel.make('clean', 'metadata'));
    const got: Command[] = [];
    const detach = ch.attach('n1', { write: (c) => got.push(c), end: () => undefined });
    expect(got.map((c) => c.kind)).toEqual(['inspect']);
    ch.send('n1', CommandChannel.make('power_off'));
    expect(got.map((c) => c.kind)).toEqual(['inspect', 'power_off']);
    detach();
    expect(ch.isConnected('n1')).toBe(false);
    ch.close('n2');
    const late: Command[] = [];
    ch.attach('n2', { write: (c) => late.push(c), end: () => undefined });
    expect(late).toEqual([]);
  });
});

describe('kernel command line', () => {
  it('reads server, CA pin and debug', () => {
    expect(parseBootParams(`BOOT_IMAGE=k ip=dhcp osp.server=10.213.0.1:6385 osp.ca_sha256=${SHA.toUpperCase()} osp.debug\n`))
      .toEqual({ server: '10.213.0.1:6385', caSha256: SHA, debug: true });
    expect(parseBootParams(`osp.server=[fd00::1]:6385 osp.ca_sha256=${SHA}`).debug).toBe(false);
  });

  it('refuses missing or malformed values naming the parameter', () => {
    expect(() => parseBootParams(`osp.ca_sha256=${SHA}`)).toThrow(/^osp.server: missing from the kernel command line: expected osp.server=HOST:PORT$/);
    expect(() => parseBootParams(`osp.server=host osp.ca_sha256=${SHA}`)).toThrow(/osp.server: "host": expected HOST:PORT/);
    expect(() => parseBootParams(`osp.server=h:70000 osp.ca_sha256=${SHA}`)).toThrow(/osp.server: "h:70000"/);
    expect(() => parseBootParams('osp.server=h:1 osp.ca_sha256=abc')).toThrow(/osp.ca_sha256: "abc": expected the 64-hex-digit sha256/);
  });
});

describe('disk wipe', () => {
  const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'osp-wipe-'));

  it('metadata mode zeroes exactly the first and last MiB; full mode everything; tiny disks entirely', async () => {
    const dir = tmp();
    try {
      const f = path.join(dir, 'vda');
      writeFileSync(f, Buffer.alloc(5 * MIB + 512, 0x11));
      expect(await wipeDisk({ path: f, sizeBytes: 5 * MIB + 512 }, 'metadata')).toBe(2 * MIB);
      const b = readFileSync(f);
      expect(b.subarray(0, MIB).every((x) => x === 0)).toBe(true);
      expect(b[MIB]).toBe(0x11);
      expect(b[b.length - MIB - 1]).toBe(0x11);
      expect(b.subarray(b.length - MIB).every((x) => x === 0)).toBe(true);
      const steps: number[] = [];
      expect(await wipeDisk({ path: f, sizeBytes: b.length }, 'full', (done) => steps.push(done))).toBe(b.length);
      expect(readFileSync(f).every((x) => x === 0)).toBe(true);
      expect(steps.at(-1)).toBe(b.length);
      const small = path.join(dir, 'vdb');
      writeFileSync(small, Buffer.alloc(MIB + 7, 0x22));
      await wipeDisk({ path: small, sizeBytes: MIB + 7 }, 'metadata');
      expect(readFileSync(small).every((x) => x === 0)).toBe(true);
      // A partition far from both ends (a config drive: it holds a token) loses its first MiB, its superblock, too.
      const parted = path.join(dir, 'vdc');
      writeFileSync(parted, Buffer.alloc(16 * MIB, 0x33));
      execFileSync('sgdisk', ['-Z', '-n', '1:8M:+4M', parted], { stdio: 'ignore' });
      expect(await wipeDisk({ path: parted, sizeBytes: 16 * MIB }, 'metadata')).toBe(3 * MIB);
      const c = readFileSync(parted);
      expect(c.subarray(8 * MIB, 9 * MIB).every((x) => x === 0)).toBe(true);
      expect(c[9 * MIB]).toBe(0x33);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('under --root, only whole disks named like kernel disks are targets', async () => {
    const dir = tmp();
    try {
      mkdirSync(path.join(dir, 'dev'));
      for (const n of ['sda', 'sda1', 'vdb', 'nvme0n1', 'nvme0n1p1', 'loop0', 'zram0', 'sr0', 'null']) writeFileSync(path.join(dir, 'dev', n), Buffer.alloc(10));
      expect((await rootDisks(dir)).map((d) => path.basename(d.path))).toEqual(['nvme0n1', 'sda', 'vdb']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CA pinning', () => {
  async function tlsServer(chainPem: string, keyPem: string): Promise<{ srv: Server; addr: string }> {
    const srv = createServer({ cert: chainPem, key: keyPem, ALPNProtocols: ['h2'] }, (s) => s.end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return { srv, addr: `127.0.0.1:${(srv.address() as { port: number }).port}` };
  }

  it('trusts the CA whose DER sha256 is pinned, and refuses a server that does not present it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-pin-'));
    const tls = await ensureServerTls(dir, ['127.0.0.1']);
    const withCa = await tlsServer(tls.serverCertPem + tls.caCertPem, tls.serverKeyPem);
    const leafOnly = await tlsServer(tls.serverCertPem, tls.serverKeyPem);
    try {
      const got = await fetchPinnedCa(withCa.addr, tls.caSha256, 5000);
      expect(got.caPem.replace(/\s/g, '')).toBe(tls.caCertPem.replace(/\s/g, ''));
      await expect(fetchPinnedCa(withCa.addr, SHA, 5000)).rejects.toThrow(/has the pinned sha256 .*refusing to trust this server/);
      await expect(fetchPinnedCa(leafOnly.addr, tls.caSha256, 5000)).rejects.toThrow(/refusing to trust this server/);
    } finally {
      withCa.srv.close();
      leafOnly.srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
