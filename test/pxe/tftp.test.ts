/**
 * TFTP against real clients (curl, atftp, tftp-hpa) on loopback, plus a
 * hand-made client only where no real client can produce the packet (NUL
 * in a filename, a client that stops acknowledging).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TftpServer } from '../../server/pxe/tftp/server.js';
import { AccessViolation, checkName } from '../../server/pxe/root-path.js';
import { MemoryBootLog } from '../../server/pxe/memory.js';
import { run } from './netns.js';
import { waitFor } from '../harness/wait.js';

let base: string;
let root: string;
let out: string;
let server: TftpServer;
let port: number;
const files: Record<string, Buffer> = {};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const fileSha = (p: string) => sha(readFileSync(p));

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'osp-tftp-'));
  root = join(base, 'tftp');
  out = join(base, 'out');
  mkdirSync(root);
  mkdirSync(out);
  mkdirSync(join(root, 'sub'));
  mkdirSync(join(base, 'tftp-private'));
  writeFileSync(join(base, 'tftp-private', 'secret'), 'secret');
  writeFileSync(join(base, 'outside'), 'outside');
  symlinkSync(join(base, 'tftp-private'), join(root, 'escape'));
  symlinkSync('../outside', join(root, 'escape-file'));
  symlinkSync('sub', join(root, 'inside-link'));
  const specs: Record<string, number> = { 'small.bin': 1000, 'exact.bin': 8192 * 4, 'sub/medium.bin': 3 * 1024 * 1024 + 17, 'empty.bin': 0 };
  for (const [name, size] of Object.entries(specs)) {
    files[name] = randomBytes(size);
    writeFileSync(join(root, name), files[name]);
  }
  server = new TftpServer({
    listenHost: '127.0.0.1', port: 0, root, timeoutMs: 1000, maxRetries: 5,
    generated: async (name) => (name === 'generated/hello.ipxe' ? Buffer.from('#!ipxe\necho generated\n') : null),
  }, new MemoryBootLog());
  await server.start();
  port = server.address().port;
});

afterAll(async () => {
  await server?.stop();
  rmSync(base, { recursive: true, force: true });
});

async function curl(name: string, dest: string, extra: string[] = []): Promise<void> {
  const r = await run('curl', ['-sS', '--fail', ...extra, '-o', dest, `tftp://127.0.0.1:${port}/${name}`], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`curl ${name}: ${r.stderr}`);
}

describe('TFTP with real clients', () => {
  const cases: Array<[string, string[]]> = [
    ['default', []], ['blksize 512', ['--tftp-blksize', '512']], ['blksize 1468', ['--tftp-blksize', '1468']], ['blksize 8192', ['--tftp-blksize', '8192']],
  ];
  for (const [label, extra] of cases) {
    it(`curl fetches byte-identical files (${label})`, async () => {
      // curl 7.88 fails on zero-byte TFTP files (getpeername error) with any server; atftp and tftp-hpa cover empty.bin.
      for (const name of Object.keys(files).filter((n) => n !== 'empty.bin')) {
        const dest = join(out, `curl-${label.replace(/ /g, '')}-${name.replace('/', '_')}`);
        await curl(name, dest, extra);
        expect(fileSha(dest)).toBe(sha(files[name]));
      }
    });
  }

  const atftpCases: Array<[string, string[]]> = [
    ['blksize 512', ['--option', 'blksize 512']], ['blksize 1468 tsize', ['--option', 'blksize 1468', '--option', 'tsize']],
    ['blksize 8192 windowsize 8', ['--option', 'blksize 8192', '--option', 'windowsize 8']], ['windowsize 4', ['--option', 'windowsize 4']],
  ];
  for (const [label, extra] of atftpCases) {
    it(`atftp fetches byte-identical files (${label})`, async () => {
      for (const name of Object.keys(files)) {
        const dest = join(out, `atftp-${label.replace(/ /g, '')}-${name.replace('/', '_')}`);
        const r = await run('atftp', [...extra, '-g', '-r', name, '-l', dest, '127.0.0.1', String(port)], { timeoutMs: 60_000 });
        expect(r.code, r.stderr).toBe(0);
        expect(fileSha(dest)).toBe(sha(files[name]));
      }
    });
  }

  it('tftp-hpa fetches byte-identical files', async () => {
    for (const name of Object.keys(files)) {
      const dest = join(out, `hpa-${name.replace('/', '_')}`);
      const r = await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', name, dest], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(fileSha(dest)).toBe(sha(files[name]));
    }
  });

  it('serves generated content and follows symlinks that stay inside the root', async () => {
    await curl('generated/hello.ipxe', join(out, 'gen'));
    expect(readFileSync(join(out, 'gen'), 'utf8')).toBe('#!ipxe\necho generated\n');
    await curl('inside-link/medium.bin', join(out, 'via-link'));
    expect(fileSha(join(out, 'via-link'))).toBe(sha(files['sub/medium.bin']));
  });

  it('crosses block-number rollover on a 100 MB file', { timeout: 300_000 }, async () => {
    const big = join(root, 'big.bin');
    const h = createHash('sha256');
    const fd = openSync(big, 'w');
    for (let i = 0; i < 100; i++) {
      const chunk = randomBytes(1024 * 1024);
      h.update(chunk);
      writeSync(fd, chunk);
    }
    closeSync(fd);
    const want = h.digest('hex');
    // 1468-byte blocks: 71,431 blocks, past 65,535.
    await curl('big.bin', join(out, 'big-curl'), ['--tftp-blksize', '1468']);
    expect(fileSha(join(out, 'big-curl'))).toBe(want);
    const r = await run('atftp', ['--option', 'blksize 1024', '--option', 'windowsize 16', '-g', '-r', 'big.bin', '-l', join(out, 'big-atftp'), '127.0.0.1', String(port)], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(fileSha(join(out, 'big-atftp'))).toBe(want);
    rmSync(big);
    rmSync(join(out, 'big-curl'));
    rmSync(join(out, 'big-atftp'));
  });

  it('completes 50 concurrent transfers', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => curl('sub/medium.bin', join(out, `conc-${i}`), ['--tftp-blksize', '1468']).then(() => fileSha(join(out, `conc-${i}`)))));
    expect(new Set(results)).toEqual(new Set([sha(files['sub/medium.bin'])]));
    await waitFor('sessions closed', () => server.activeSessions() === 0, { timeoutMs: 15_000 });
  });
});

/** Sends one raw request and returns the first reply (opcode, code/block, text). */
async function rawRequest(packet: Buffer): Promise<{ op: number; code: number; text: string }> {
  const s = dgram.createSocket('udp4');
  try {
    return await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply within 3 s')), 3000);
      s.on('message', (m) => { clearTimeout(t); resolve({ op: m.readUInt16BE(0), code: m.readUInt16BE(2), text: m.subarray(4).toString('latin1').replace(/\0$/, '') }); });
      s.send(packet, port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

const rrq = (name: string | Buffer, op = 1) => Buffer.concat([Buffer.from([0, op]), Buffer.isBuffer(name) ? name : Buffer.from(name, 'latin1'), Buffer.from('\0octet\0')]);

describe('TFTP access control', () => {
  const corpus: Array<[string, Buffer]> = [
    ['dot-dot', rrq('../outside')],
    ['dot-dot in the middle', rrq('sub/../../outside')],
    ['absolute path', rrq(`${join(base ?? '/tmp', 'outside')}`)],
    ['absolute /etc/passwd', rrq('/etc/passwd')],
    ['backslash', rrq('sub\\..\\..\\outside')],
    ['symlink directory escaping root', rrq('escape/secret')],
    ['symlink file escaping root', rrq('escape-file')],
    ['sibling prefix', rrq('../tftp-private/secret')],
  ];
  for (const [name, packet] of corpus) {
    it(`refuses ${name} with access violation`, async () => {
      const r = await rawRequest(packet);
      expect(r.op).toBe(5);
      expect(r.code).toBe(2);
      expect(r.text).toMatch(/access violation/);
    });
  }

  it('never serves a name with an embedded NUL (the protocol ends the name there; the rest is not a mode)', async () => {
    const r = await rawRequest(rrq(Buffer.from('small.bin\0../outside', 'latin1')));
    expect(r).toMatchObject({ op: 5, code: 4 });
    expect(() => checkName('small.bin\0../outside')).toThrow(AccessViolation);
  });

  it('curl cannot reach the sibling-prefix directory either', async () => {
    const r = await run('curl', ['-sS', '--fail', '--path-as-is', '-o', join(out, 'nope'), `tftp://127.0.0.1:${port}/../tftp-private/secret`]);
    expect(r.code).not.toBe(0);
  });

  it('refuses write requests (read-only)', async () => {
    const r = await rawRequest(rrq('upload.bin', 2));
    expect(r).toMatchObject({ op: 5, code: 2 });
    const hpa = await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', join(root, 'small.bin'), 'upload.bin']);
    expect(hpa.stdout + hpa.stderr).toMatch(/read-only|Access violation/i);
  });

  it('answers a missing file with file not found', async () => {
    expect(await rawRequest(rrq('missing.bin'))).toMatchObject({ op: 5, code: 1 });
  });
});

describe('TFTP retransmission', () => {
  it('drops a client that stops acknowledging after the retry limit, without leaking the session', async () => {
    const stall = new TftpServer({ listenHost: '127.0.0.1', port: 0, root, timeoutMs: 200, maxRetries: 3 }, new MemoryBootLog());
    await stall.start();
    const s = dgram.createSocket('udp4');
    const got: number[] = [];
    s.on('message', (m) => got.push(m.readUInt16BE(0)));
    s.send(rrq('sub/medium.bin'), stall.address().port, '127.0.0.1');
    await waitFor('first DATA', () => got.length > 0, { timeoutMs: 15_000 });
    expect(stall.activeSessions()).toBe(1);
    await waitFor('session dropped', () => stall.activeSessions() === 0, { timeoutMs: 15_000 });
    await waitFor('the ERROR packet', () => got.includes(5), { timeoutMs: 5000, intervalMs: 10 });
    s.close();
    // DATA 1 once plus 3 retransmissions, then an ERROR.
    expect(got).toEqual([3, 3, 3, 3, 5]);
    expect(stall.status().counters.transfers_timed_out).toBe(1);
    await stall.stop();
  });
});
