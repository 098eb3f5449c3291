import { spawn } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageStore } from '../../server/store/images.js';
import { OSPCTL, runProgram } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';
import { coreutilsSum, makeImages, sha256, VIRTUAL_BYTES } from './fixtures.js';
import { ImageServer } from './server.js';
import { sha256OfData } from '../provision/images.js';

interface ShownImage {
  name: string; format: string; size_bytes: number; virtual_size_bytes: number; allocated_bytes: number;
  sha256: string; sha512: string; raw_sha256: string; data_sha256: string; used_by: string[]; created_at: string;
  extents: { start_bytes: number; length_bytes: number; data: boolean }[];
}

describe('images in ospd: ospctl upload/list/show/delete against qemu-img-made images, download with curl', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-images-'));
  const files = makeImages(dir);
  const s = new ImageServer();

  const show = async (name: string): Promise<ShownImage> => {
    const r = await s.ctl(['image', 'show', name, '-f', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as ShownImage;
  };

  beforeAll(async () => {
    await s.start();
  }, 60_000);

  afterAll(async () => {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(s.dataDir, { recursive: true, force: true });
  });

  it('stores a qcow2: digests of the file as sha256sum/sha512sum give them, virtual size, extents, and rawSha256 = sha256 of qemu-img convert -O raw', async () => {
    const up = await s.ctl(['image', 'upload', 'web', files.qcow2]);
    expect(up.code, up.stderr).toBe(0);
    // Not a terminal: plain progress lines.
    expect(up.stderr).toMatch(/^uploaded 100% \(\d+ of \d+ bytes\)$/m);
    const img = await show('web');
    expect(img).toMatchObject({
      name: 'web', format: 'qcow2', size_bytes: statSync(files.qcow2).size, virtual_size_bytes: VIRTUAL_BYTES,
      sha256: coreutilsSum('sha256sum', files.qcow2), sha512: coreutilsSum('sha512sum', files.qcow2),
      raw_sha256: coreutilsSum('sha256sum', files.reference), used_by: [],
    });
    const data = img.extents.filter((e) => e.data);
    // The random runs, plus the first 4 KiB that qemu-img convert always allocates in a raw target (to probe alignment later).
    expect(data.map((e) => [e.start_bytes, e.length_bytes])).toEqual([[0, 4096], [3 << 20, 2 << 20], [40 << 20, 1 << 20]]);
    expect(img.allocated_bytes).toBe((3 << 20) + 4096);
    expect(img.extents.reduce((n, e) => n + e.length_bytes, 0)).toBe(VIRTUAL_BYTES);
    // What a deploy verifies: the data extents' bytes of the reference raw, in order (hashed here by positional reads).
    expect(img.data_sha256).toBe(await sha256OfData(files.reference, img.extents.map((e) => ({ start: e.start_bytes, length: e.length_bytes, data: e.data }))));
    expect(img.data_sha256).not.toBe(img.raw_sha256);
    // The stored raw file is sparse: far fewer blocks than its size.
    const st = statSync(path.join(s.dataDir, 'images', 'web.raw'));
    expect(st.size).toBe(VIRTUAL_BYTES);
    expect(st.blocks * 512).toBeLessThan(8 << 20);
  });

  it('stores a sparse raw file: same raw content as the qcow2, the raw file\'s own digests', async () => {
    const up = await s.ctl(['image', 'upload', 'web-raw', files.raw, '--format', 'raw']);
    expect(up.code, up.stderr).toBe(0);
    const img = await show('web-raw');
    const web = await show('web');
    expect(img).toMatchObject({
      format: 'raw', size_bytes: VIRTUAL_BYTES, virtual_size_bytes: VIRTUAL_BYTES, allocated_bytes: (3 << 20) + 4096,
      sha256: coreutilsSum('sha256sum', files.raw), raw_sha256: coreutilsSum('sha256sum', files.reference),
    });
    expect(img.extents).toEqual(web.extents);
  });

  it('an image stored before the data digest existed gets it when ospd starts', async () => {
    const before = await show('web');
    await s.ospd!.core.db.run("UPDATE images SET data_sha256 = '' WHERE name = 'web'");
    await s.stop();
    await s.start();
    expect((await show('web')).data_sha256).toBe(before.data_sha256);
  });

  it('re-uploading the same content under the same name is a no-op; other content under it is refused', async () => {
    const before = await show('web');
    const again = await s.ctl(['image', 'upload', 'web', files.qcow2]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/the same content is already stored; nothing changed/);
    expect(await show('web')).toEqual(before);
    const other = await s.ctl(['image', 'upload', 'web', files.raw]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`already stored with sha256 ${before.sha256}`);
  });

  it('refuses a file whose header contradicts the claimed format, with the reason', async () => {
    const r = await s.ctl(['image', 'upload', 'liar', files.qcow2, '--format', 'raw']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/format: "raw" claimed, but the file starts with the qcow2 magic .*: it is qcow2/);
    const q = await s.ctl(['image', 'upload', 'liar', files.raw, '--format', 'qcow2']);
    expect(q.code).toBe(1);
    expect(q.stderr).toMatch(/format: "qcow2" claimed, but the file does not start with the qcow2 magic .*: it is raw/);
    expect((await s.ctl(['image', 'list', '-f', 'value', '-c', 'name'])).stdout.split('\n')).not.toContain('liar');
  });

  it('refuses a truncated qcow2 (qemu-img check) and keeps nothing of it', async () => {
    const r = await s.ctl(['image', 'upload', 'cut', files.truncated]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ospctl: chunk: the qcow2 is truncated or corrupt: qemu-img check found \d+ corruption/m);
    expect((await s.ctl(['image', 'show', 'cut'])).stderr).toMatch(/image cut: not found/);
    expect(readdirSync(path.join(s.dataDir, 'images', '.incoming'))).toEqual([]);
  });

  it('an upload whose client is killed mid-stream leaves nothing in the list and no temp file', async () => {
    const big = path.join(dir, 'big.raw');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 256 << 20);
    writeSync(fd, randomBytes(1 << 20), 0, 1 << 20, 0);
    closeSync(fd);
    const p = spawn(process.execPath, [OSPCTL, 'image', 'upload', 'gone', big], { env: { ...process.env, OSPCTL_CONFIG: path.join(s.dataDir, 'admin.yaml') } });
    const incoming = path.join(s.dataDir, 'images', '.incoming');
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    // Killed once bytes have flowed and the server holds a temp file.
    await waitFor('the upload to start', () => /uploaded \d+%/.test(err) && readdirSync(incoming).length > 0, { timeoutMs: 20_000, intervalMs: 20 });
    p.kill('SIGKILL');
    await waitFor('the temp file to go', () => readdirSync(incoming).length === 0, { timeoutMs: 15_000, detail: () => readdirSync(incoming).join(', ') });
    const list = await s.ctl(['image', 'list', '-f', 'json']);
    expect((JSON.parse(list.stdout) as ShownImage[]).map((i) => i.name)).toEqual(['web', 'web-raw']);
    expect(readdirSync(path.join(s.dataDir, 'images')).sort()).toEqual(['.incoming', 'web-raw.raw', 'web.raw']);
  }, 60_000);

  it('serves /images/<name>/raw only with that image\'s deploy token: 401 without, 403 wrong/other/expired/revoked, Range gives the right bytes', async () => {
    const node = await s.ospd!.core.registry.create({ name: 'web-0', driver: 'fake', driverInfo: {}, properties: {}, capabilities: {}, rootDevice: {}, ports: [] }, 'test');
    const other = await s.ospd!.core.registry.create({ name: 'web-1', driver: 'fake', driverInfo: {}, properties: {}, capabilities: {}, rootDevice: {}, ports: [] }, 'test');
    const token = await s.images.tokens.issue('web', node.uuid, 60_000);
    const otherImageToken = await s.images.tokens.issue('web-raw', other.uuid, 60_000);
    const url = `http://127.0.0.1:${s.httpPort}/images/web/raw`;
    const out = path.join(dir, 'got');
    // Asynchronous: ospd answers from this very process.
    const curl = async (...args: string[]) => (await runProgram('curl', ['-s', '--max-time', '20', '-o', out, '-w', '%{http_code}', ...args, url])).stdout;
    expect(await curl()).toBe('401');
    expect(await curl('-H', 'Authorization: Bearer ospd_wrong')).toBe('403');
    expect(await curl('-H', `Authorization: Bearer ${otherImageToken}`)).toBe('403');
    // Data then a hole: the bytes qemu-img's own conversion has there.
    const start = (5 << 20) - 4096;
    expect(await curl('-H', `Authorization: Bearer ${token}`, '-r', `${start}-${start + 8191}`)).toBe('206');
    const reference = readFileSync(files.reference);
    expect(sha256(readFileSync(out))).toBe(sha256(reference.subarray(start, start + 8192)));
    expect(await curl('-H', `Authorization: Bearer ${token}`)).toBe('200');
    expect(sha256(readFileSync(out))).toBe(coreutilsSum('sha256sum', files.reference));
    const expired = await s.images.tokens.issue('web', other.uuid, 1);
    await new Promise((r) => setTimeout(r, 5));
    expect(await curl('-H', `Authorization: Bearer ${expired}`)).toBe('403');
    expect(await s.images.tokens.revoke(node.uuid)).toBe(true);
    expect(await curl('-H', `Authorization: Bearer ${token}`)).toBe('403');
  });

  it('delete is refused while a node in a deploy state uses the image, naming the node; allowed once it no longer does', async () => {
    const node = await s.ospd!.core.registry.get('web-0');
    await imageStore.setNodeImage(s.ospd!.core.db, node.uuid, 'web', new Date().toISOString());
    await s.ospd!.core.db.run(`UPDATE nodes SET provision_state = 'active' WHERE uuid = ?`, [node.uuid]);
    expect((await show('web')).used_by).toEqual(['web-0']);
    const refused = await s.ctl(['image', 'delete', 'web']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^ospctl: image web: in use by node web-0 \(in a deploy state\)/m);
    await s.ospd!.core.db.run(`UPDATE nodes SET provision_state = 'available' WHERE uuid = ?`, [node.uuid]);
    const ok = await s.ctl(['image', 'delete', 'web']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('Deleted image web\n');
    expect(readdirSync(path.join(s.dataDir, 'images'))).not.toContain('web.raw');
    expect((await s.ctl(['image', 'show', 'web'])).code).toBe(1);
  });

  it('bad names are refused naming the field and what is expected', async () => {
    const r = await runProgram(process.execPath, [OSPCTL, 'image', 'upload', '../x', files.raw], { env: { OSPCTL_CONFIG: path.join(s.dataDir, 'admin.yaml') } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/name: "\.\.\/x": expected 1 to 63 lowercase letters/);
  });
});
