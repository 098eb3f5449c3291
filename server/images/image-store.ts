/**
 * The image store: uploads land in `<data-dir>/images/.incoming/`, are
 * checked, converted once to a sparse raw file with its extent map and
 * rawSha256, renamed into place as `<name>.raw`, and recorded in one store
 * transaction. Only a recorded image is visible; anything else in the
 * directory is debris of an interrupted upload and is removed at start.
 * The uploaded file itself is not kept: its digests are, and the raw file is
 * what machines are written with.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { OspError } from '../../common/errors.js';
import { ExtentCursor } from '../../common/extents.js';
import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { imageStore, type ImageRow } from '../store/images.js';
import type { ProvisionState } from '../nodes/model.js';
import { convertToRaw, dataBytes, extentMap, qcow2CheckErrors, qemuInfo, type DiskFormat, type Extent } from './qemu.js';
import { receiveInto } from './receive.js';

/** A node in one of these states, linked to an image in `node_images`, keeps the image from being deleted. */
export const IMAGE_IN_USE_STATES: readonly ProvisionState[] = ['deploying', 'wait call-back', 'active', 'deploy failed'];

/** DNS-label-like: safe as a file name and a URL path segment, so neither can escape its directory. */
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const IMAGE_NAME_EXPECTED = "1 to 63 lowercase letters, digits and '-', not starting or ending with '-'";

export function validImageName(name: string, field = 'image'): string {
  if (!NAME_RE.test(name)) throw new OspError('IMAGE_INVALID', `${field}: ${JSON.stringify(name)}: expected ${IMAGE_NAME_EXPECTED}`, { field, value: name, expected: IMAGE_NAME_EXPECTED });
  return name;
}

export interface ImageRecord {
  name: string;
  /** The uploaded file's format. */
  format: DiskFormat;
  sizeBytes: number;
  sha256: string;
  sha512: string;
  virtualSizeBytes: number;
  /** Bytes of the raw file holding data: the sum of the data extents, what a deploy fetches. */
  allocatedBytes: number;
  rawSha256: string;
  /** sha256 of the data extents' bytes, concatenated in order: what the agent verifies (it zeroes the holes itself). */
  dataSha256: string;
  extents: Extent[];
  manifest: Record<string, unknown> | null;
  createdAt: string;
}

export interface UploadHeader {
  name: string;
  /** null: detect from the header. */
  format: DiskFormat | null;
  sizeBytes: number;
  manifestJson: string;
}

export interface ImageStoreOptions {
  dataDir: string;
  maxBytes: number;
  idleTimeoutMs?: number;
  log: Logger;
}

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

function fromRow(r: ImageRow): ImageRecord {
  return {
    name: r.name, format: r.format as DiskFormat, sizeBytes: r.size_bytes, sha256: r.sha256, sha512: r.sha512,
    virtualSizeBytes: r.virtual_size_bytes, allocatedBytes: r.allocated_bytes, rawSha256: r.raw_sha256, dataSha256: r.data_sha256,
    extents: JSON.parse(r.extents) as Extent[], manifest: r.manifest ? JSON.parse(r.manifest) as Record<string, unknown> : null, createdAt: r.created_at,
  };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(1) : v} ${units[i]} (${n} bytes)`;
}

/**
 * Both digests of a raw file in one read: over the whole virtual size, and
 * over the data extents only (the bytes a deploy fetches, in order).
 */
export async function rawDigests(file: string, extents: readonly Extent[]): Promise<{ rawSha256: string; dataSha256: string }> {
  const raw = createHash('sha256');
  const data = createHash('sha256');
  const cursor = new ExtentCursor(extents);
  let pos = 0;
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) {
    const chunk = c as Buffer;
    raw.update(chunk);
    for (const p of cursor.within(pos, chunk.length)) if (p.data) data.update(chunk.subarray(p.offset, p.offset + p.length));
    pos += chunk.length;
  }
  return { rawSha256: raw.digest('hex'), dataSha256: data.digest('hex') };
}

export class ImageStore {
  readonly dir: string;
  readonly incoming: string;
  private readonly busy = new Set<string>();
  private readonly added: ((name: string) => void)[] = [];

  constructor(private readonly db: Database, private readonly o: ImageStoreOptions) {
    this.dir = path.join(o.dataDir, 'images');
    this.incoming = path.join(this.dir, '.incoming');
  }

  /** Clears debris of uploads cut short by a crash (temp files, a raw file renamed but never recorded). */
  async start(): Promise<void> {
    await mkdir(this.incoming, { recursive: true, mode: 0o700 });
    const known = new Set(await imageStore.names(this.db));
    for (const f of await readdir(this.incoming)) await rm(path.join(this.incoming, f), { force: true, recursive: true });
    for (const f of await readdir(this.dir)) {
      if (f.endsWith('.raw') && !known.has(f.slice(0, -4))) {
        this.o.log.warn({ file: f }, 'removing an image file with no record (upload interrupted)');
        await rm(path.join(this.dir, f), { force: true });
      }
    }
    // Images stored before the data digest existed get it once, from their raw file.
    for (const r of await imageStore.withoutDataDigest(this.db)) {
      const { dataSha256 } = await rawDigests(this.rawPath(r.name), JSON.parse(r.extents) as Extent[]);
      await imageStore.setDataDigest(this.db, r.name, dataSha256);
      this.o.log.info({ image: r.name }, 'data digest computed for an image stored before it existed');
    }
  }

  async stop(): Promise<void> {}

  /** Called with every stored image name now, and with each one stored later (the HTTP route is per image). */
  onAdded(fn: (name: string) => void | Promise<void>): Promise<void> {
    this.added.push((n) => void fn(n));
    return imageStore.names(this.db).then((names) => { for (const n of names) void fn(n); });
  }

  rawPath(name: string): string {
    return path.join(this.dir, `${validImageName(name)}.raw`);
  }

  async get(name: string): Promise<ImageRecord> {
    const r = await imageStore.get(this.db, validImageName(name));
    if (!r) throw new OspError('IMAGE_NOT_FOUND', `image ${name}: not found`, { field: 'image', value: name });
    return fromRow(r);
  }

  async list(limit = 0, marker = ''): Promise<{ images: ImageRecord[]; nextMarker: string }> {
    const n = Math.min(limit || DEFAULT_PAGE, MAX_PAGE);
    const rows = await imageStore.list(this.db, n + 1, marker);
    const page = rows.slice(0, n).map(fromRow);
    return { images: page, nextMarker: rows.length > n ? page[page.length - 1].name : '' };
  }

  /** Nodes in a deploy state deployed with the image, by name. */
  usedBy(name: string): Promise<string[]> {
    return imageStore.usedBy(this.db, name, IMAGE_IN_USE_STATES);
  }

  /** For the deploy flow: records which image a node is deployed with (null when it no longer is). */
  async setNodeImage(nodeUuid: string, image: string | null): Promise<void> {
    if (image !== null) await this.get(image);
    await imageStore.setNodeImage(this.db, nodeUuid, image, new Date().toISOString());
  }

  async delete(name: string): Promise<void> {
    validImageName(name);
    await this.db.transaction(async (tx) => {
      if (!(await imageStore.get(tx, name))) throw new OspError('IMAGE_NOT_FOUND', `image ${name}: not found`, { field: 'image', value: name });
      const nodes = await imageStore.usedBy(tx, name, IMAGE_IN_USE_STATES);
      if (nodes.length) {
        throw new OspError('IMAGE_IN_USE', `image ${name}: in use by ${nodes.length === 1 ? 'node' : 'nodes'} ${nodes.join(', ')} (in a deploy state); undeploy or rebuild them with another image first`, {
          field: 'image', value: name, expected: 'an image no node in a deploy state uses', nodes,
        });
      }
      await imageStore.delete(tx, name);
    });
    await rm(this.rawPath(name), { force: true });
  }

  /** Bytes free to an unprivileged writer in the images directory. */
  private async freeBytes(): Promise<number> {
    const s = await statfs(this.dir);
    return s.bavail * s.bsize;
  }

  private async needSpace(name: string, needBytes: number, what: string): Promise<void> {
    const free = await this.freeBytes();
    if (free < needBytes) {
      throw new OspError('IMAGE_NO_SPACE', `image ${name}: not enough space in ${this.dir}: needs ${formatBytes(needBytes)} (${what}), ${formatBytes(free)} free`, {
        field: 'size_bytes', value: needBytes, expected: `at most ${free} bytes (free space)`, needBytes, freeBytes: free,
      });
    }
  }

  private checkHeader(h: UploadHeader): Record<string, unknown> | null {
    validImageName(h.name, 'name');
    if (!Number.isSafeInteger(h.sizeBytes) || h.sizeBytes <= 0) {
      throw new OspError('IMAGE_INVALID', `size_bytes: ${h.sizeBytes}: expected the file's size, more than 0`, { field: 'size_bytes', value: h.sizeBytes, expected: 'more than 0' });
    }
    if (h.sizeBytes > this.o.maxBytes) {
      throw new OspError('IMAGE_TOO_LARGE', `image ${h.name}: ${formatBytes(h.sizeBytes)} is over the per-image limit image-max-bytes ${formatBytes(this.o.maxBytes)}`, {
        field: 'size_bytes', value: h.sizeBytes, expected: `at most ${this.o.maxBytes} (image-max-bytes)`,
      });
    }
    if (!h.manifestJson) return null;
    let m: unknown;
    try {
      m = JSON.parse(h.manifestJson);
    } catch (e) {
      throw new OspError('IMAGE_INVALID', `manifest_json: not JSON: ${(e as Error).message}`, { field: 'manifest_json', expected: 'an osp-image manifest (JSON object)' });
    }
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      throw new OspError('IMAGE_INVALID', 'manifest_json: expected a JSON object (an osp-image manifest)', { field: 'manifest_json', expected: 'a JSON object' });
    }
    return m as Record<string, unknown>;
  }

  /**
   * Receives, checks, converts and records one upload. Whatever goes wrong
   * (a refusal, the client going away, ospd stopping), the temp files go and
   * nothing is recorded. Same name and same sha256 as a stored image: nothing
   * changes (`unchanged`).
   */
  async upload(h: UploadHeader, source: Readable): Promise<{ image: ImageRecord; unchanged: boolean }> {
    const manifest = this.checkHeader(h);
    if (this.busy.has(h.name)) throw new OspError('IMAGE_BUSY', `image ${h.name}: another upload of it is in progress`, { field: 'name', value: h.name });
    // Assumed: the upload, then a raw file whose data is no larger than it (true of raw and uncompressed qcow2;
    // a compressed qcow2 is checked again against its real data size once received).
    await this.needSpace(h.name, 2 * h.sizeBytes, 'the upload and its raw conversion');
    this.busy.add(h.name);
    const tag = `${h.name}.${randomBytes(6).toString('hex')}`;
    const upload = path.join(this.incoming, `${tag}.upload`);
    const raw = path.join(this.incoming, `${tag}.raw`);
    try {
      const got = await receiveInto(source, upload, { claimed: h.format, sizeBytes: h.sizeBytes, idleTimeoutMs: this.o.idleTimeoutMs ?? 60_000 });
      const existing = await imageStore.get(this.db, h.name);
      if (existing) {
        if (existing.sha256 === got.sha256) return { image: fromRow(existing), unchanged: true };
        throw new OspError('IMAGE_EXISTS', `image ${h.name}: already stored with sha256 ${existing.sha256}, this upload is ${got.sha256}; delete it first or choose another name`, {
          field: 'name', value: h.name, expected: 'a new name, or the same content',
        });
      }
      const info = await this.inspect(upload, got.detected, h.format);
      const srcExtents = await extentMap(upload, got.detected);
      await this.needSpace(h.name, dataBytes(srcExtents), 'the raw conversion\'s data');
      await convertToRaw(upload, got.detected, raw);
      await rm(upload, { force: true });
      const extents = await extentMap(raw, 'raw');
      const record: ImageRecord = {
        name: h.name, format: got.detected, sizeBytes: got.sizeBytes, sha256: got.sha256, sha512: got.sha512,
        virtualSizeBytes: info.virtualSizeBytes, allocatedBytes: dataBytes(extents), ...await rawDigests(raw, extents),
        extents, manifest, createdAt: new Date().toISOString(),
      };
      const final = this.rawPath(h.name);
      await rename(raw, final);
      try {
        await imageStore.insert(this.db, {
          name: record.name, format: record.format, size_bytes: record.sizeBytes, sha256: record.sha256, sha512: record.sha512,
          virtual_size_bytes: record.virtualSizeBytes, allocated_bytes: record.allocatedBytes, raw_sha256: record.rawSha256, data_sha256: record.dataSha256,
          extents: JSON.stringify(record.extents), manifest: manifest ? JSON.stringify(manifest) : '', created_at: record.createdAt,
        });
      } catch (e) {
        await rm(final, { force: true });
        throw e;
      }
      this.o.log.info({ image: h.name, format: record.format, sizeBytes: record.sizeBytes, virtualSizeBytes: record.virtualSizeBytes, allocatedBytes: record.allocatedBytes, sha256: record.sha256 }, 'image stored');
      for (const fn of this.added) fn(h.name);
      return { image: record, unchanged: false };
    } finally {
      this.busy.delete(h.name);
      await rm(upload, { force: true });
      await rm(raw, { force: true });
    }
  }

  /** What qemu-img says about the received file; refuses what ospd cannot deploy. */
  private async inspect(file: string, detected: DiskFormat, claimed: DiskFormat | null): Promise<{ virtualSizeBytes: number }> {
    if (detected === 'raw') {
      // No qcow2 magic; other formats qemu-img knows (vmdk, vdi, vhdx, …) must not pass as raw disks.
      const probed = await qemuInfo(file);
      if (probed.format !== 'raw') {
        throw new OspError('IMAGE_INVALID', `format: the file is ${probed.format} (qemu-img's probe), ${claimed ? `not ${claimed} as claimed` : 'which ospd does not store'}; expected raw or qcow2`, {
          field: 'format', value: claimed ?? probed.format, expected: 'raw or qcow2',
        });
      }
      return { virtualSizeBytes: (await qemuInfo(file, 'raw')).virtualSizeBytes };
    }
    const info = await qemuInfo(file, 'qcow2');
    if (info.backingFile) {
      throw new OspError('IMAGE_INVALID', `chunk: the qcow2 has a backing file (${info.backingFile}); expected a standalone image (qemu-img convert it first)`, { field: 'chunk', value: info.backingFile, expected: 'a qcow2 without a backing file' });
    }
    if (info.dataFile) {
      throw new OspError('IMAGE_INVALID', `chunk: the qcow2 keeps its data in an external file (${info.dataFile}); expected a standalone image`, { field: 'chunk', value: info.dataFile, expected: 'a qcow2 without an external data file' });
    }
    const check = await qcow2CheckErrors(file);
    if (check.errors > 0) {
      throw new OspError('IMAGE_INVALID', `chunk: the qcow2 is truncated or corrupt: qemu-img check found ${check.errors} corruption(s)${check.detail ? ` (${check.detail})` : ''}`, {
        field: 'chunk', value: `${check.errors} errors`, expected: 'a complete qcow2 (qemu-img check clean)',
      });
    }
    return { virtualSizeBytes: info.virtualSizeBytes };
  }
}
