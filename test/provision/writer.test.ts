/**
 * The agent's image writer against real HTTP peers (ospd's static-file
 * code behind a bearer check, and BusyBox httpd; see images.ts), real
 * qemu-img images and a real loop device. The reference for every written
 * disk is `qemu-img convert -O raw` of the image, hashed over its virtual size.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OspError } from '../../common/errors.js';
import { dataBytes } from '../../common/extents.js';
import { writeImage, type WriteProgress } from '../../agent/provision/writer.js';
import { MIB, prepare, run, sha256File, sha256OfData, sparseRaw, startBusybox, startImageServer, type TestImage } from './images.js';

const dir = mkdtempSync(path.join(tmpdir(), 'osp-writer-'));
let qcow: TestImage;
let sparse: TestImage;

/** Data at scattered offsets, some not page-aligned; holes of tens of MiB between. */
/** The 64 KiB hole after 35 MiB is shorter than the writer's coalescing gap: it is fetched with its neighbours. */
const WRITES: [number, number][] = [[0, 64 * 1024], [3 * MIB + 12_345, 2 * MIB + 777], [30 * MIB, 5 * MIB], [35 * MIB + 64 * 1024, 4096], [61 * MIB + 512, 4096 * 3], [90 * MIB, MIB]];
/** Not a multiple of 4096: the last hole ends unaligned. */
const RAW_SIZE = 96 * MIB + 1536;

beforeAll(async () => {
  const src = path.join(dir, 'src.raw');
  sparseRaw(src, 96 * MIB, WRITES);
  const q = path.join(dir, 'img.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', src, q]);
  qcow = await prepare(q, dir);
  const s = path.join(dir, 'img.raw');
  sparseRaw(s, RAW_SIZE, [...WRITES, [RAW_SIZE - 1000, 1000]]);
  sparse = await prepare(s, dir);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function freshTarget(name: string, sizeBytes: number): string {
  const f = path.join(dir, name);
  rmSync(f, { force: true });
  run('truncate', ['-s', String(sizeBytes), f]);
  return f;
}

/** A target full of random bytes: every hole left unzeroed would show. */
function garbageTarget(name: string, sizeBytes: number): string {
  const f = path.join(dir, name);
  rmSync(f, { force: true });
  run('dd', ['if=/dev/urandom', `of=${f}`, 'bs=1M', `count=${sizeBytes}`, 'iflag=count_bytes,fullblock', 'status=none']);
  return f;
}

function reference(img: TestImage): string {
  return img.rawSha256;
}

describe('writeImage', () => {
  it('writes a qcow2 (via its raw) to a fresh file byte-identical to qemu-img convert -O raw, fetching only data', async () => {
    const srv = await startImageServer(qcow.raw);
    try {
      const target = freshTarget('t-qcow', qcow.virtualSizeBytes);
      const progress: WriteProgress[] = [];
      const r = await writeImage({ url: srv.url, token: srv.token, extents: qcow.extents, virtualSizeBytes: qcow.virtualSizeBytes, rawSha256: qcow.rawSha256, dataSha256: qcow.dataSha256, device: target, onProgress: (p) => progress.push({ ...p }), progressIntervalMs: 0 });
      expect(await sha256File(target, qcow.virtualSizeBytes)).toBe(reference(qcow));
      const data = dataBytes(qcow.extents);
      expect(r.networkBytes).toBeGreaterThanOrEqual(WRITES.reduce((s, [, l]) => s + l, 0));
      // Coalesced short gaps may ride along: at most one gap (< 128 KiB) per data extent.
      expect(r.networkBytes).toBeLessThanOrEqual(data + qcow.extents.length * 128 * 1024);
      expect(r.networkBytes).toBeLessThan(qcow.virtualSizeBytes * 0.2);
      expect(srv.requests.every((q) => q.range.startsWith('bytes=') && q.status === 206)).toBe(true);
      expect(r.zeroMethod).toBe('punch-hole');
      expect(progress.at(-1)).toMatchObject({ doneBytes: qcow.virtualSizeBytes, totalBytes: qcow.virtualSizeBytes, percent: 100 });
      expect(progress.map((p) => p.doneBytes)).toEqual([...progress.map((p) => p.doneBytes)].sort((a, b) => a - b));
    } finally {
      await srv.close();
    }
  });

  it('zeroes the holes of a target full of garbage (sparse raw, unaligned tail, target larger than the image)', async () => {
    const srv = await startImageServer(sparse.raw);
    try {
      const target = garbageTarget('t-garbage', sparse.virtualSizeBytes + 3 * MIB);
      const r = await writeImage({ url: srv.url, token: srv.token, extents: sparse.extents, virtualSizeBytes: sparse.virtualSizeBytes, rawSha256: sparse.rawSha256, dataSha256: sparse.dataSha256, device: target });
      expect(await sha256File(target, sparse.virtualSizeBytes)).toBe(reference(sparse));
      expect(r.zeroedBytes + r.dataBytes).toBe(sparse.virtualSizeBytes);
      expect(statSync(target).size).toBe(sparse.virtualSizeBytes + 3 * MIB);
    } finally {
      await srv.close();
    }
  });

  it('writes to a loop device holding garbage with O_DIRECT, zeroing holes with blkdiscard --zeroout; unaligned extents go through the cache', async () => {
    const backing = garbageTarget('t-loop', 128 * MIB);
    const loop = run('losetup', ['-f', '--show', backing]).trim();
    const srv = await startImageServer(qcow.raw);
    const srv2 = await startImageServer(sparse.raw);
    try {
      const r = await writeImage({ url: srv.url, token: srv.token, extents: qcow.extents, virtualSizeBytes: qcow.virtualSizeBytes, rawSha256: qcow.rawSha256, dataSha256: qcow.dataSha256, device: loop });
      expect(r.zeroMethod).toBe('blkdiscard');
      expect(r.zeroFallbackReason).toBeUndefined();
      expect(r.directIo).toBe(true);
      expect(r.directFallbackReason).toBeUndefined();
      expect(await sha256File(loop, qcow.virtualSizeBytes)).toBe(reference(qcow));
      // The sparse raw ends 1000 bytes of data into an unaligned tail: that write cannot be direct, the rest still is.
      const r2 = await writeImage({ url: srv2.url, token: srv2.token, extents: sparse.extents, virtualSizeBytes: sparse.virtualSizeBytes, rawSha256: sparse.rawSha256, dataSha256: sparse.dataSha256, device: loop });
      expect(r2.directIo).toBe(true);
      expect(await sha256File(loop, sparse.virtualSizeBytes)).toBe(reference(sparse));
    } finally {
      await srv.close();
      await srv2.close();
      execFileSync('losetup', ['-d', loop]);
    }
  });

  // An older ospd sends only raw_sha256: the writer then hashes the whole virtual size, holes as zeros.
  it('works against BusyBox httpd (Range without keep-alive), a peer osp did not write (raw_sha256 only)', async () => {
    const bb = await startBusybox(sparse.raw);
    try {
      const target = garbageTarget('t-busybox', sparse.virtualSizeBytes);
      const r = await writeImage({ url: bb.url, token: 'unused-by-busybox', extents: sparse.extents, virtualSizeBytes: sparse.virtualSizeBytes, rawSha256: sparse.rawSha256, device: target });
      expect(await sha256File(target, sparse.virtualSizeBytes)).toBe(reference(sparse));
      expect(bb.connections).toBe(r.requests);
    } finally {
      await bb.close();
    }
  });

  it('resumes a connection dropped mid-extent with a Range request from the byte reached', async () => {
    // The first answer longer than 1.5 MiB (the ~2 MiB extent near 3 MiB) dies 1.5 MiB in.
    const srv = await startImageServer(qcow.raw, { dropAfterBytes: 1.5 * MIB });
    try {
      const target = garbageTarget('t-resume', qcow.virtualSizeBytes);
      const r = await writeImage({ url: srv.url, token: srv.token, extents: qcow.extents, virtualSizeBytes: qcow.virtualSizeBytes, rawSha256: qcow.rawSha256, dataSha256: qcow.dataSha256, device: target, retry: { attempts: 3, backoffMs: 10 } });
      expect(await sha256File(target, qcow.virtualSizeBytes)).toBe(reference(qcow));
      expect(r.resumes).toBe(1);
      expect(srv.requests.length).toBe(r.requests);
      // The cut request is followed by one asking for the rest of the same range, guarded by If-Range.
      const cut = srv.requests.findIndex((q) => q.dropped);
      expect(srv.requests.filter((q) => q.dropped)).toHaveLength(1);
      const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(srv.requests[cut].range)!.map(Number);
      expect(to - from + 1).toBeGreaterThan(1.5 * MIB);
      const second = srv.requests[cut + 1];
      const m = /^bytes=(\d+)-(\d+)$/.exec(second.range)!;
      expect(Number(m[2])).toBe(to);
      expect(Number(m[1])).toBeGreaterThan(from);
      expect(Number(m[1])).toBeLessThanOrEqual(from + 1.5 * MIB);
      expect(second.ifRange).toMatch(/^"[0-9a-f]{64}"$/);
    } finally {
      await srv.close();
    }
  });

  it('gives up after the configured attempts when every answer drops, naming the attempts and URL', async () => {
    const srv = await startImageServer(qcow.raw, { dropAfterBytes: 1000, dropTimes: Infinity });
    try {
      const target = freshTarget('t-bounded', qcow.virtualSizeBytes);
      const t0 = Date.now();
      const e = await writeImage({ url: srv.url, token: srv.token, extents: qcow.extents, virtualSizeBytes: qcow.virtualSizeBytes, rawSha256: qcow.rawSha256, device: target, retry: { attempts: 3, backoffMs: 20 } }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OspError);
      expect((e as OspError).code).toBe('IMAGE_FETCH_FAILED');
      expect((e as Error).message).toMatch(new RegExp(`still missing after 3 attempts; last: .*\\(url ${srv.url.replace(/[/.]/g, '\\$&')}\\)$`));
      expect(srv.requests.length).toBe(3);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await srv.close();
    }
  });

  it('does not retry a 403 and names the status and URL', async () => {
    const srv = await startImageServer(qcow.raw);
    try {
      const target = freshTarget('t-403', qcow.virtualSizeBytes);
      const e = await writeImage({ url: srv.url, token: 'a-token-ospd-never-issued', extents: qcow.extents, virtualSizeBytes: qcow.virtualSizeBytes, rawSha256: qcow.rawSha256, device: target, retry: { attempts: 5, backoffMs: 10 } }).catch((x: unknown) => x);
      expect((e as OspError).code).toBe('IMAGE_FETCH_FAILED');
      expect((e as Error).message).toBe(`image fetch failed: HTTP 403 (deploy token refused); not retried (url ${srv.url})`);
      expect((e as Error).message).not.toContain('a-token-ospd-never-issued');
      expect(srv.requests.length).toBe(1);
    } finally {
      await srv.close();
    }
  });

  async function corruptCopy(name: string, offset: number): Promise<string> {
    const bad = path.join(dir, name);
    run('cp', ['--sparse=always', sparse.raw, bad]);
    const fh = await open(bad, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, offset);
    await fh.close();
    return bad;
  }

  it('fails on a corrupted data byte with both data digests and the URL', async () => {
    const bad = await corruptCopy('corrupt-data.raw', 31 * MIB);
    const actual = await sha256OfData(bad, sparse.extents);
    const srv = await startImageServer(bad);
    try {
      const target = freshTarget('t-corrupt-data', sparse.virtualSizeBytes);
      const e = await writeImage({ url: srv.url, token: srv.token, extents: sparse.extents, virtualSizeBytes: sparse.virtualSizeBytes, rawSha256: sparse.rawSha256, dataSha256: sparse.dataSha256.toUpperCase(), device: target }).catch((x: unknown) => x);
      expect((e as OspError).code).toBe('IMAGE_CHECKSUM_MISMATCH');
      expect((e as Error).message).toBe(`image checksum mismatch: expected sha256 of the data extents ${sparse.dataSha256}, wrote ${actual} (url ${srv.url}, device ${target})`);
    } finally {
      await srv.close();
    }
  });

  it('fails when bytes fetched across a short hole are not zeros (the hole is not hashed, so it is checked)', async () => {
    const at = 35 * MIB + 1000;
    expect(sparse.extents.find((x) => x.start <= at && at < x.start + x.length)?.data).toBe(false);
    const bad = await corruptCopy('corrupt-hole.raw', at);
    const srv = await startImageServer(bad);
    try {
      const target = freshTarget('t-corrupt-hole', sparse.virtualSizeBytes);
      const e = await writeImage({ url: srv.url, token: srv.token, extents: sparse.extents, virtualSizeBytes: sparse.virtualSizeBytes, rawSha256: sparse.rawSha256, dataSha256: sparse.dataSha256, device: target }).catch((x: unknown) => x);
      expect((e as OspError).code).toBe('IMAGE_CHECKSUM_MISMATCH');
      expect((e as Error).message).toBe(`image checksum mismatch: the extent map says offset ${at} is a hole, but the bytes fetched there are not zeros (url ${srv.url}, device ${target})`);
    } finally {
      await srv.close();
    }
  });

  it('fails on a corrupted image file with both digests and the URL (raw_sha256 only)', async () => {
    const bad = path.join(dir, 'corrupt.raw');
    run('cp', ['--sparse=always', sparse.raw, bad]);
    // One byte flipped inside the data at 30 MiB.
    const fh = await open(bad, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 31 * MIB);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, 31 * MIB);
    await fh.close();
    const actual = await sha256File(bad);
    const srv = await startImageServer(bad);
    try {
      const target = freshTarget('t-corrupt', sparse.virtualSizeBytes);
      const e = await writeImage({ url: srv.url, token: srv.token, extents: sparse.extents, virtualSizeBytes: sparse.virtualSizeBytes, rawSha256: sparse.rawSha256.toUpperCase(), device: target }).catch((x: unknown) => x);
      expect((e as OspError).code).toBe('IMAGE_CHECKSUM_MISMATCH');
      expect((e as Error).message).toBe(`image checksum mismatch: expected sha256 ${sparse.rawSha256}, wrote ${actual} (url ${srv.url}, device ${target})`);
    } finally {
      await srv.close();
    }
  });

  it('refuses a target smaller than the virtual size before writing anything', async () => {
    const target = path.join(dir, 't-small');
    writeFileSync(target, Buffer.alloc(4096, 0x5a));
    const srv = await startImageServer(qcow.raw);
    try {
      const e = await writeImage({ url: srv.url, token: srv.token, extents: qcow.extents, virtualSizeBytes: qcow.virtualSizeBytes, rawSha256: qcow.rawSha256, device: target }).catch((x: unknown) => x);
      expect((e as OspError).code).toBe('DEPLOY_TARGET_TOO_SMALL');
      expect((e as Error).message).toBe(`device: ${target} holds 4096 bytes; the image needs ${qcow.virtualSizeBytes} bytes (virtual size)`);
      expect(srv.requests.length).toBe(0);
      expect(Buffer.compare(Buffer.alloc(4096, 0x5a), (await import('node:fs')).readFileSync(target))).toBe(0);
    } finally {
      await srv.close();
    }
  });

  it('refuses a missing device and a bad checksum argument, naming the field', async () => {
    const base = { url: 'http://127.0.0.1:9/raw', token: 't', extents: qcow.extents, virtualSizeBytes: qcow.virtualSizeBytes, rawSha256: qcow.rawSha256 };
    await expect(writeImage({ ...base, device: '/dev/osp-no-such-disk' })).rejects.toThrow(/^device: \/dev\/osp-no-such-disk: does not exist$/);
    await expect(writeImage({ ...base, rawSha256: 'abc', device: '/dev/null' })).rejects.toThrow(/^rawSha256: "abc": expected 64 hexadecimal digits$/);
    await expect(writeImage({ ...base, dataSha256: 'xyz', device: '/dev/null' })).rejects.toThrow(/^dataSha256: "xyz": expected 64 hexadecimal digits$/);
    await expect(writeImage({ ...base, virtualSizeBytes: qcow.virtualSizeBytes + 1, device: '/dev/null' })).rejects.toThrow(/^extents: "ends at \d+": expected coverage up to virtualSizeBytes/);
  });
});
