import { statfsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logging.js';
import { isOspError } from '../../common/errors.js';
import { resolveConfig } from '../../server/config.js';
import { Database } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { ImageStore } from '../../server/images/image-store.js';

async function refusal(p: Promise<unknown>) {
  const e = await p.then(() => null, (x: unknown) => x);
  if (!isOspError(e)) throw new Error(`expected an OspError, got ${String(e)}`);
  return e;
}

describe('image store limits: image-max-bytes and the free-space check name their numbers', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-image-limits-'));
  let db: Database;

  beforeAll(async () => {
    db = await Database.open(path.join(dir, 'ospd.sqlite'));
    await migrate(db);
  });

  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an upload over image-max-bytes before reading it', async () => {
    const store = new ImageStore(db, { dataDir: dir, maxBytes: 1 << 20, log: silentLogger() });
    await store.start();
    const e = await refusal(store.upload({ name: 'big', format: null, sizeBytes: 3 << 20, manifestJson: '' }, Readable.from([])));
    expect(e.code).toBe('IMAGE_TOO_LARGE');
    expect(e.message).toBe('image big: 3.0 MiB (3145728 bytes) is over the per-image limit image-max-bytes 1.0 MiB (1048576 bytes)');
    expect(e.details).toMatchObject({ field: 'size_bytes', value: 3 << 20 });
  });

  it('refuses an upload needing more than the free space, naming what it needs and what is free', async () => {
    const store = new ImageStore(db, { dataDir: dir, maxBytes: Number.MAX_SAFE_INTEGER, log: silentLogger() });
    await store.start();
    const size = 2 ** 50; // 1 PiB: no test machine has twice that free
    const e = await refusal(store.upload({ name: 'huge', format: null, sizeBytes: size, manifestJson: '' }, Readable.from([])));
    expect(e.code).toBe('IMAGE_NO_SPACE');
    const s = statfsSync(path.join(dir, 'images'));
    const free = s.bavail * s.bsize;
    expect(e.message).toContain(`needs 2.0 PiB (${2 * size} bytes) (the upload and its raw conversion)`);
    expect(e.message).toMatch(/, [\d.]+ [KMGTP]?i?B \(\d+ bytes\) free$/);
    expect(e.details).toMatchObject({ needBytes: 2 * size });
    expect(Math.abs((e.details.freeBytes as number) - free)).toBeLessThan(64 * 1024 * 1024);
    expect(readdirSync(path.join(dir, 'images', '.incoming'))).toEqual([]);
  });

  it('image-max-bytes is a setting: default 64 GiB, a bad value names the key', () => {
    expect(resolveConfig({}, {}).imageMaxBytes).toBe(64 * 1024 ** 3);
    expect(resolveConfig({}, { 'image-max-bytes': '1048576' }).imageMaxBytes).toBe(1048576);
    expect(() => resolveConfig({}, { 'image-max-bytes': '1G' })).toThrow(/image-max-bytes/);
  });
});
