/** HTTP boot service against curl: boot scripts per node state, artifacts with ranges and validators. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpBootServer } from '../../server/pxe/http/server.js';
import { MemoryBootLog, MemoryDirectory } from '../../server/pxe/memory.js';
import { run } from './netns.js';
import { waitFor } from '../harness/wait.js';

let base: string;
let server: HttpBootServer;
let url: string;
const bootLog = new MemoryBootLog();
const kernel = randomBytes(300_000);
const CA = 'ab'.repeat(32);
const BIG_BYTES = 4_000_000;

async function curl(args: string[]): Promise<{ code: number; status: number; headers: Record<string, string>; body: string }> {
  const hdr = join(base, `h-${randomBytes(4).toString('hex')}`);
  const r = await run('curl', ['-sS', '-D', hdr, ...args]);
  const raw = readFileSync(hdr, 'utf8');
  const headers: Record<string, string> = {};
  for (const line of raw.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { code: r.code, status: Number(raw.split(' ')[1]), headers, body: r.stdout };
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'osp-http-'));
  const root = join(base, 'http');
  mkdirSync(root);
  mkdirSync(join(base, 'http-private'));
  writeFileSync(join(base, 'http-private', 'secret'), 'secret');
  symlinkSync(join(base, 'http-private'), join(root, 'escape'));
  writeFileSync(join(root, 'ramdisk.kernel'), kernel);
  writeFileSync(join(root, 'big.bin'), randomBytes(BIG_BYTES));
  writeFileSync(join(base, 'custom.initramfs'), 'initramfs-bytes');
  const directory = new MemoryDirectory([
    { uuid: 'u-inspect', name: 'inspect-me', provisionState: 'inspect wait', macs: ['52:54:00:00:00:01'] },
    { uuid: 'u-active', name: 'prod-1', provisionState: 'active', macs: ['52:54:00:00:00:02'] },
    { uuid: 'u-deploy', name: 'deploy-me', provisionState: 'deploying', macs: ['52:54:00:00:00:03'] },
  ]);
  server = new HttpBootServer({
    listenHost: '127.0.0.1', port: 0, root, ramdiskInitramfsFile: join(base, 'custom.initramfs'),
    boot: { httpBaseUrl: 'http://10.213.0.1:8080', serverAddress: '10.213.0.1:6385', caSha256: CA, discovery: false, extraKernelArgs: 'console=ttyS0' },
    macForAddress: (a) => (a === '127.0.0.1' ? '52:54:00:00:00:01' : null),
  }, directory, bootLog);
  server.addRoute('/metrics', (_req, res) => { res.writeHead(200, { 'Content-Type': 'text/plain' }).end('osp_up 1\n'); });
  await server.start();
  url = `http://127.0.0.1:${server.address().port}`;
});

afterAll(async () => {
  await server?.stop();
  rmSync(base, { recursive: true, force: true });
});

describe('boot scripts', () => {
  it('boots the ramdisk for a node waiting for inspection, with server and CA pin and no secrets', async () => {
    const r = await curl([`${url}/boot.ipxe?mac=52-54-00-00-00-01`]);
    expect(r.status).toBe(200);
    expect(r.body.startsWith('#!ipxe\n')).toBe(true);
    expect(r.body).toContain('kernel http://10.213.0.1:8080/ramdisk.kernel ');
    expect(r.body).toContain(`osp.server=10.213.0.1:6385 osp.ca_sha256=${CA} osp.mac=52:54:00:00:00:01`);
    expect(r.body).toContain('osp.node_uuid=u-inspect');
    expect(r.body).toContain('initrd --name ramdisk.initramfs http://10.213.0.1:8080/ramdisk.initramfs');
    expect(r.body).toMatch(/:failed\n.*retrying.*\nsleep 5\ngoto fetch/);
    expect(r.body).not.toMatch(/token|password/i);
    expect(bootLog.forMac('52:54:00:00:00:01').find((e) => e.event === 'boot script served')).toMatchObject({ service: 'http', detail: { kind: 'ramdisk' } });
  });

  it('boots from local disk when active, and the ramdisk when deploying', async () => {
    const active = await curl([`${url}/boot.ipxe?mac=52:54:00:00:00:02`]);
    expect(active.body).toContain('sanboot --no-describe --drive 0x80');
    expect(active.body).not.toContain('kernel ');
    expect((await curl([`${url}/boot.ipxe?mac=525400000003`])).body).toContain('osp.node_uuid=u-deploy');
  });

  it('tells an unknown machine it is not enrolled while discovery is off', async () => {
    const r = await curl([`${url}/boot.ipxe?mac=52:54:00:00:00:99`]);
    expect(r.body).toContain('52:54:00:00:00:99 is not enrolled and discovery is off');
    expect(r.body).not.toContain('kernel ');
  });

  it('rejects a malformed MAC with a message naming the field and value', async () => {
    const r = await curl([`${url}/boot.ipxe?mac=zz:00`]);
    expect(r.status).toBe(400);
    expect(r.body).toContain('mac: "zz:00" is not a MAC address');
  });
});

describe('artifacts', () => {
  const sha = createHash('sha256').update(kernel).digest('hex');

  it('serves a file with Content-Length, ETag and sha256', async () => {
    const r = await curl(['-o', join(base, 'k'), `${url}/ramdisk.kernel`]);
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(kernel.length));
    expect(r.headers['x-checksum-sha256']).toBe(sha);
    expect(r.headers.etag).toBe(`"${sha}"`);
    expect(readFileSync(join(base, 'k')).equals(kernel)).toBe(true);
    // The fetch is logged once the server has finished sending, which may be just after curl exits.
    const fetch = await waitFor('kernel fetch in the boot log', () => bootLog.forMac('52:54:00:00:00:01').find((e) => e.event === 'GET /ramdisk.kernel'), { timeoutMs: 15_000, intervalMs: 20 });
    expect(fetch).toMatchObject({ detail: { status: 200, bytes: kernel.length } });
  });

  it('logs each fetch even when the client resets the connection the moment the last byte arrives', async () => {
    // A destroyed socket forgets its peer address; the server must have read it before streaming.
    const fetches = 20;
    for (let i = 0; i < fetches; i++) {
      await new Promise<void>((resolve, reject) => {
        const c = connect(server.address().port, '127.0.0.1', () => c.write('GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n'));
        let received = 0;
        const timer = setTimeout(() => { c.destroy(); reject(new Error(`fetch ${i} stalled at ${received} bytes`)); }, 5_000);
        c.on('data', (d) => { received += d.length; if (received >= BIG_BYTES) { clearTimeout(timer); c.resetAndDestroy(); resolve(); } });
        c.on('error', (e) => { clearTimeout(timer); reject(e); });
      });
    }
    const logged = () => bootLog.forMac('52:54:00:00:00:01').filter((e) => e.event === 'GET /big.bin').length;
    await waitFor(`${fetches} logged fetches`, () => logged() >= fetches, { timeoutMs: 15_000, intervalMs: 20 }).catch(() => undefined);
    expect(logged()).toBe(fetches);
  });

  it('answers byte ranges, suffix ranges, resumes and unsatisfiable ranges', async () => {
    const mid = await curl(['-r', '1000-1999', `${url}/ramdisk.kernel`, '-o', join(base, 'mid')]);
    expect(mid.status).toBe(206);
    expect(mid.headers['content-range']).toBe(`bytes 1000-1999/${kernel.length}`);
    expect(readFileSync(join(base, 'mid')).equals(kernel.subarray(1000, 2000))).toBe(true);
    const tail = await curl(['-r', '-500', `${url}/ramdisk.kernel`, '-o', join(base, 'tail')]);
    expect(tail.status).toBe(206);
    expect(readFileSync(join(base, 'tail')).equals(kernel.subarray(kernel.length - 500))).toBe(true);
    writeFileSync(join(base, 'resume'), kernel.subarray(0, 123_456));
    await curl(['-C', '-', `${url}/ramdisk.kernel`, '-o', join(base, 'resume')]);
    expect(readFileSync(join(base, 'resume')).equals(kernel)).toBe(true);
    expect((await curl(['-r', `${kernel.length}-`, `${url}/ramdisk.kernel`, '-o', '/dev/null'])).status).toBe(416);
  });

  it('answers If-None-Match with 304 and serves the overridden initramfs', async () => {
    const r = await curl(['-H', `If-None-Match: "${sha}"`, `${url}/ramdisk.kernel`]);
    expect(r.status).toBe(304);
    expect((await curl([`${url}/ramdisk.initramfs`])).body).toBe('initramfs-bytes');
  });

  it('refuses paths leaving the root and 404s missing files', async () => {
    // URL parsing already folds dot segments into the root (→ 404); what matters is the secret never leaves.
    for (const path of ['/../http-private/secret', '/%2e%2e/http-private/secret', '/sub/..%2f..%2fhttp-private%2fsecret']) {
      const r = await curl(['--path-as-is', `${url}${path}`]);
      expect([403, 404], path).toContain(r.status);
      expect(r.body === 'secret').toBe(false);
    }
    expect((await curl([`${url}/escape/secret`])).status).toBe(403);
    expect((await curl(['--path-as-is', `${url}/..%2fhttp-private%2fsecret`])).status).toBe(403);
    expect((await curl([`${url}/nope.bin`])).status).toBe(404);
    expect((await curl(['-X', 'POST', `${url}/ramdisk.kernel`])).status).toBe(405);
  });

  it('serves routes added by other modules', async () => {
    const r = await curl([`${url}/metrics`]);
    expect(r.body).toBe('osp_up 1\n');
    expect(server.status().counters.requests).toBeGreaterThan(5);
  });
});

describe('boot scripts without a ramdisk in place', () => {
  it('tells the machine why on its console, asks again later, and records it in the boot log', async () => {
    const root = mkdtempSync(join(tmpdir(), 'osp-http-empty-'));
    const log = new MemoryBootLog();
    const directory = new MemoryDirectory([{ uuid: 'u-i', name: 'inspect-me', provisionState: 'inspect wait', macs: ['52:54:00:00:00:09'] }]);
    const s = new HttpBootServer({
      listenHost: '127.0.0.1', port: 0, root,
      boot: { httpBaseUrl: 'http://10.213.0.1:8080', serverAddress: '10.213.0.1:6385', caSha256: CA, discovery: false },
    }, directory, log);
    await s.start();
    try {
      const r = await curl([`http://127.0.0.1:${s.address().port}/boot.ipxe?mac=52:54:00:00:00:09`]);
      expect(r.status).toBe(200);
      expect(r.body).toContain(`osp: ospd has no ramdisk to boot 52:54:00:00:00:09 into: missing ${join(root, 'ramdisk.kernel')}, ${join(root, 'ramdisk.initramfs')}`);
      expect(r.body).toContain('chain --replace http://10.213.0.1:8080/boot.ipxe?mac=52:54:00:00:00:09');
      expect(r.body).not.toContain('kernel http');
      const e = log.forMac('52:54:00:00:00:09').find((x) => x.event === 'ramdisk missing');
      expect(e?.detail?.missing).toEqual([join(root, 'ramdisk.kernel'), join(root, 'ramdisk.initramfs')]);
      // Once the operator builds it, the same request boots the ramdisk.
      writeFileSync(join(root, 'ramdisk.kernel'), 'k');
      writeFileSync(join(root, 'ramdisk.initramfs'), 'i');
      const ok = await curl([`http://127.0.0.1:${s.address().port}/boot.ipxe?mac=52:54:00:00:00:09`]);
      expect(ok.body).toContain('kernel http://10.213.0.1:8080/ramdisk.kernel');
    } finally {
      await s.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
