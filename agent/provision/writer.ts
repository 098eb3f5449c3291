/**
 * Writes a disk image from ospd to a disk without holding it in memory: the
 * data extents are fetched with HTTP Range requests and written at their
 * offsets through a few fixed shared buffers (one filling from the socket
 * while the others are written and hashed), the holes are zeroed on the
 * device beside the data stream, and a sha256 computed on a thread of its
 * own is checked against the digest the deploy command carried over the
 * authenticated gRPC stream.
 *
 * What is hashed: the data extents' bytes in order (`dataSha256`). The holes
 * are not hashed: hashing zeros from memory would prove nothing about the
 * disk, and it cost more than the whole write (3 of 4 GiB in the benchmark's
 * image). The extent map that says where the holes are came over the same
 * authenticated stream as the digest, the agent zeroes the holes itself, and
 * bytes fetched across a short hole (coalesced into one request) must be
 * zeros or the write fails. An older ospd sends only `rawSha256` (the whole
 * virtual size, holes as zeros), which is still verified that way.
 */
import { Worker } from 'node:worker_threads';
import { OspError } from '../../common/errors.js';
import { ExtentCursor, validateExtents, type Extent } from '../../common/extents.js';
import { RangeFetcher, type RetryPolicy } from './fetch.js';
import { closeTarget, directUsable, openTarget, type Target } from './target.js';
import { writeAll, Zeroer, type ZeroMethod } from './zero.js';

export interface WriteProgress {
  /** Data written plus holes hashed (their zeroing runs beside the data from the start). */
  doneBytes: number;
  totalBytes: number;
  percent: number;
  mbPerSec: number;
}

export interface WriteImageOptions {
  /** The raw image (`/images/<name>/raw` on ospd's HTTP listener). */
  url: string;
  /** Per-deploy bearer token; sent only in the Authorization header, never logged. */
  token: string;
  extents: readonly Extent[];
  virtualSizeBytes: number;
  rawSha256: string;
  /** sha256 of the data extents' bytes in order; when given, only these are hashed (see the file's comment). */
  dataSha256?: string;
  /** Block device (or a regular file in tests). */
  device: string;
  onProgress?: (p: WriteProgress) => void;
  signal?: AbortSignal;
  retry?: RetryPolicy;
  /** Per request: no byte for this long drops the connection (then resumed). */
  idleTimeoutMs?: number;
  /** Holes shorter than this between data extents are fetched with them (one request instead of two). */
  coalesceGapBytes?: number;
  /** Minimum interval between progress callbacks (the last one always comes). */
  progressIntervalMs?: number;
}

export interface WriteImageResult {
  sha256: string;
  virtualSizeBytes: number;
  dataBytes: number;
  zeroedBytes: number;
  networkBytes: number;
  requests: number;
  resumes: number;
  zeroMethod: ZeroMethod;
  zeroFallbackReason?: string;
  /** Whether the data went to the disk with O_DIRECT (block devices), and why not when it fell back. */
  directIo: boolean;
  directFallbackReason?: string;
  durationMs: number;
}

const BUFFER_BYTES = 4 * 1024 * 1024;
/** Buffers between the socket, the disk and the hashing thread: the socket keeps filling while the hash catches up on a hole. */
const BUFFER_COUNT = 4;
const ZERO_BYTES = 4 * 1024 * 1024;
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, backoffMs: 500 };
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_COALESCE_GAP_BYTES = 128 * 1024;
const DEFAULT_PROGRESS_INTERVAL_MS = 500;
const SHA256_HEX = /^[0-9a-f]{64}$/;

const WASM_PAGE_BYTES = 64 * 1024;

/**
 * Shared memory aligned for O_DIRECT. A SharedArrayBuffer comes from
 * malloc, 16 bytes past a page boundary, and the kernel refuses direct I/O
 * from it (EINVAL); WebAssembly memory is mapped by V8's page allocator, so
 * it starts on a page boundary and stays there.
 */
function alignedShared(bytes: number): SharedArrayBuffer {
  const pages = Math.ceil(bytes / WASM_PAGE_BYTES);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer as unknown as SharedArrayBuffer;
}

/** The zeros hashed and written for holes: allocated once per process, shared with the hashing thread, never written to. */
let sharedZeros: SharedArrayBuffer | null = null;
function zeros(): SharedArrayBuffer {
  sharedZeros ??= alignedShared(ZERO_BYTES);
  return sharedZeros;
}

type Op = { kind: 'fetch' | 'zero'; start: number; length: number };

/** Data extents merged across short holes into fetches; the holes left are zeroed. */
export function planOps(extents: readonly Extent[], coalesceGapBytes: number): Op[] {
  const ops: Op[] = [];
  for (let i = 0; i < extents.length; i++) {
    const e = extents[i];
    const prev = ops[ops.length - 1];
    const next = extents[i + 1];
    const shortGap = !e.data && prev?.kind === 'fetch' && next?.data === true && e.length < coalesceGapBytes;
    const kind = e.data || shortGap ? 'fetch' : 'zero';
    if (prev && prev.kind === kind) prev.length += e.length;
    else ops.push({ kind, start: e.start, length: e.length });
  }
  return ops;
}

/**
 * The hashing thread (CommonJS source: a single-executable agent has no
 * worker file on disk). Messages in image order:
 * [slot, position, pieces] goes through a buffer holding the image from
 * `position` on — pieces are flat triples (offset, length, hash?): hashed,
 * or checked to be zeros (a short hole fetched with its neighbours) — and
 * hands the slot back; [-1, length] hashes that many zeros (raw mode);
 * [-2] answers [hex digest, image offset of the first non-zero hole byte or -1].
 */
const HASH_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const h = require('node:crypto').createHash('sha256');
const slots = workerData.slots.map((b) => Buffer.from(b));
const zeros = Buffer.from(workerData.zeros);
let notZeroAt = -1;
parentPort.on('message', ([slot, a, pieces]) => {
  if (slot >= 0) {
    const buf = slots[slot];
    for (let i = 0; i < pieces.length; i += 3) {
      const off = pieces[i], len = pieces[i + 1];
      if (pieces[i + 2]) h.update(buf.subarray(off, off + len));
      else if (notZeroAt < 0 && !buf.subarray(off, off + len).equals(zeros.subarray(0, len))) {
        const at = buf.subarray(off, off + len).findIndex((b) => b !== 0);
        notZeroAt = a + off + at;
      }
    }
    parentPort.postMessage(slot);
    return;
  }
  if (slot === -2) { parentPort.postMessage([h.digest('hex'), notZeroAt]); return; }
  for (let off = 0; off < a; off += zeros.length) h.update(zeros.subarray(0, Math.min(zeros.length, a - off)));
});
`;

/**
 * Which bytes of a buffer are data (hashed) and which a coalesced hole
 * (checked to be zeros), for buffers handed over in image order, as the
 * hashing thread's flat triples.
 */
class Pieces {
  private readonly cursor?: ExtentCursor;

  /** undefined: everything is hashed (raw mode). */
  constructor(extents: readonly Extent[] | undefined) {
    if (extents) this.cursor = new ExtentCursor(extents);
  }

  of(position: number, length: number): number[] {
    if (!this.cursor) return [0, length, 1];
    return this.cursor.within(position, length).flatMap((p) => [p.offset, p.length, p.data ? 1 : 0]);
  }
}

/**
 * The sha256 of the image in order, computed on a thread of its own: at
 * ~1.3 GB/s on one core it would add about a second per GiB to a deploy;
 * here it overlaps the network and the disk instead. The buffers it reads are shared,
 * not copied.
 */
class Hasher {
  readonly slots: Buffer[];
  private readonly worker: Worker;
  private readonly free: number[] = [];
  private hashing = new Set<number>();
  private writing = new Set<number>();
  private waiters: { resolve: (slot: number) => void; reject: (e: Error) => void }[] = [];
  private digestWaiter: { resolve: (r: [string, number]) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor() {
    const shared = Array.from({ length: BUFFER_COUNT }, () => alignedShared(BUFFER_BYTES));
    this.slots = shared.map((b) => Buffer.from(b));
    this.free = this.slots.map((_, i) => i);
    this.worker = new Worker(HASH_THREAD, { eval: true, workerData: { slots: shared, zeros: zeros() } });
    this.worker.on('message', (m: number | [string, number]) => {
      if (Array.isArray(m)) return this.digestWaiter?.resolve(m);
      this.hashing.delete(m);
      this.release(m);
    });
    const fail = (e: Error): void => {
      this.failure ??= new Error(`sha256 thread: ${e.message}`);
      for (const w of this.waiters.splice(0)) w.reject(this.failure);
      this.digestWaiter?.reject(this.failure);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exited with ${code}`)));
  }

  /** A buffer no one reads any more (neither the disk write nor the hash). */
  acquire(): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    const slot = this.free.pop();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Hashes (or checks) the slot's pieces next; `write` is the disk write reading the same bytes. */
  submit(slot: number, position: number, pieces: number[], write: Promise<void>): void {
    this.hashing.add(slot);
    this.writing.add(slot);
    this.worker.postMessage([slot, position, pieces]);
    void write.finally(() => {
      this.writing.delete(slot);
      this.release(slot);
    }).catch(() => undefined);
  }

  zeros(length: number): void {
    this.worker.postMessage([-1, length]);
  }

  /** The digest, and the image offset of the first non-zero byte fetched for a hole (-1: none). */
  async digest(): Promise<[string, number]> {
    if (this.failure) throw this.failure;
    const r = new Promise<[string, number]>((resolve, reject) => { this.digestWaiter = { resolve, reject }; });
    this.worker.postMessage([-2, 0]);
    return r;
  }

  close(): void {
    this.worker.removeAllListeners('exit');
    void this.worker.terminate();
  }

  private release(slot: number): void {
    if (this.hashing.has(slot) || this.writing.has(slot)) return;
    const w = this.waiters.shift();
    if (w) w.resolve(slot);
    else this.free.push(slot);
  }
}

/** The socket fills one buffer while the ones before it are written at their offsets and hashed. */
class BufferedWriter {
  private slot = -1;
  private buf: Buffer | null = null;
  private fill = 0;
  private readonly writes = new Set<Promise<void>>();
  private writeError: unknown = null;

  private position = 0;

  constructor(private readonly t: Target, private readonly hasher: Hasher, private readonly pieces: Pieces, private readonly written: (n: number) => void) {}

  /** The next byte pushed belongs at `position` (after a flush). */
  seek(position: number): void {
    this.position = position;
  }

  /** Copies the chunk at once (the fetcher reuses its memory); a promise only when a buffer had to be waited for. */
  push(chunk: Buffer): Promise<void> | undefined {
    if (!this.buf) return this.pushRest(chunk, 0);
    const n = chunk.copy(this.buf, this.fill);
    this.fill += n;
    return n < chunk.length || this.fill === this.buf.length ? this.pushRest(chunk, n) : undefined;
  }

  private async pushRest(chunk: Buffer, off: number): Promise<void> {
    for (;;) {
      if (this.buf && this.fill === this.buf.length) this.flush();
      if (off === chunk.length) return;
      if (!this.buf) await this.take();
      const n = chunk.copy(this.buf!, this.fill, off);
      this.fill += n;
      off += n;
    }
  }

  private async take(): Promise<void> {
    // A failed write ends the stream before more is read into the next buffer.
    if (this.writeError !== null) throw this.writeError;
    this.slot = await this.hasher.acquire();
    this.buf = this.hasher.slots[this.slot];
    this.fill = 0;
  }

  /** Hands the buffer to the disk and the hash: at its end, and at an extent's end, before the hole after it is hashed. */
  flush(): void {
    if (!this.buf || this.fill === 0) return;
    const len = this.fill;
    const write = writeAll(this.t, this.buf, len, this.position).then(() => this.written(len));
    // Awaited by drain; until then a failure must not count as unhandled (a fetch error may come first).
    this.writes.add(write);
    write.then(() => this.writes.delete(write), (e: unknown) => { this.writeError ??= e; });
    this.hasher.submit(this.slot, this.position, this.pieces.of(this.position, len), write);
    this.position += len;
    this.buf = null;
    this.slot = -1;
    this.fill = 0;
  }

  /** Everything pushed is written (or the first write error is thrown). */
  async drain(): Promise<void> {
    this.flush();
    await Promise.all(this.writes);
  }
}

function invalid(field: string, value: unknown, expected: string): OspError {
  return new OspError('INVALID_ARGUMENT', `${field}: ${JSON.stringify(value)}: expected ${expected}`, { field, value, expected });
}

/**
 * Writes the image and verifies it; throws OspError IMAGE_CHECKSUM_MISMATCH,
 * IMAGE_FETCH_FAILED, DEPLOY_TARGET_INVALID or DEPLOY_TARGET_TOO_SMALL.
 * On a mismatch the disk holds what was received: the caller must not boot it.
 */
export async function writeImage(o: WriteImageOptions): Promise<WriteImageResult> {
  const t0 = Date.now();
  const retry = o.retry ?? DEFAULT_RETRY;
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1) throw invalid('retry.attempts', retry.attempts, 'a whole number ≥ 1');
  if (!(retry.backoffMs >= 0)) throw invalid('retry.backoffMs', retry.backoffMs, 'milliseconds ≥ 0');
  const dataMode = o.dataSha256 !== undefined;
  const field = dataMode ? 'dataSha256' : 'rawSha256';
  const given = dataMode ? o.dataSha256 : o.rawSha256;
  const expected = String(given).toLowerCase();
  if (!SHA256_HEX.test(expected)) throw invalid(field, given, '64 hexadecimal digits');
  validateExtents(o.extents, o.virtualSizeBytes);

  const target = await openTarget(o.device, o.virtualSizeBytes);
  const fetcher = new RangeFetcher({ url: o.url, token: o.token, totalBytes: o.virtualSizeBytes, retry, idleTimeoutMs: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, signal: o.signal });
  const hasher = new Hasher();
  const zeroer = new Zeroer(target, Buffer.from(zeros()));
  let done = 0;
  let dataBytes = 0;
  let zeroedBytes = 0;
  let lastReportMs = 0;
  const interval = o.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
  const report = (force = false): void => {
    const now = Date.now();
    if (!o.onProgress || (!force && now - lastReportMs < interval)) return;
    lastReportMs = now;
    const seconds = Math.max(1e-3, (now - t0) / 1000);
    o.onProgress({
      doneBytes: done, totalBytes: o.virtualSizeBytes,
      percent: o.virtualSizeBytes ? Math.floor((done / o.virtualSizeBytes) * 1000) / 10 : 100,
      mbPerSec: Math.round((done / 1e6 / seconds) * 10) / 10,
    });
  };
  const ops = planOps(o.extents, o.coalesceGapBytes ?? DEFAULT_COALESCE_GAP_BYTES);
  // All holes are zeroed beside the data stream (they never share a page with data); failures surface at the end.
  const zeroing = zeroer.zeroAll(ops.filter((op) => op.kind === 'zero'));
  zeroing.catch(() => undefined);
  let actual: string;
  let notZeroAt: number;
  try {
    const w = new BufferedWriter(target, hasher, new Pieces(dataMode ? o.extents : undefined), (n) => { done += n; dataBytes += n; report(); });
    for (const op of ops) {
      o.signal?.throwIfAborted();
      if (op.kind === 'fetch') {
        w.seek(op.start);
        await fetcher.fetch(op.start, op.length, (chunk) => w.push(chunk));
        w.flush();
      } else {
        if (!dataMode) hasher.zeros(op.length);
        done += op.length;
        zeroedBytes += op.length;
        report();
      }
    }
    await w.drain();
    await zeroing;
    // Durable before anyone reboots into it; the checksum then speaks for what is on the disk. The hash's tail runs meanwhile.
    [[actual, notZeroAt]] = await Promise.all([hasher.digest(), target.fh.sync()]);
  } finally {
    fetcher.close();
    hasher.close();
    await closeTarget(target);
  }
  const what = dataMode ? 'sha256 of the data extents' : 'sha256';
  if (notZeroAt >= 0) {
    throw new OspError('IMAGE_CHECKSUM_MISMATCH', `image checksum mismatch: the extent map says offset ${notZeroAt} is a hole, but the bytes fetched there are not zeros (url ${o.url}, device ${o.device})`, {
      field: 'extents', value: notZeroAt, expected: 'zeros', url: o.url, device: o.device,
    });
  }
  if (actual !== expected) {
    throw new OspError('IMAGE_CHECKSUM_MISMATCH', `image checksum mismatch: expected ${what} ${expected}, wrote ${actual} (url ${o.url}, device ${o.device})`, {
      field, value: actual, expected, url: o.url, device: o.device,
    });
  }
  report(true);
  return {
    sha256: actual, virtualSizeBytes: o.virtualSizeBytes, dataBytes, zeroedBytes,
    networkBytes: fetcher.stats.networkBytes, requests: fetcher.stats.requests, resumes: fetcher.stats.resumes,
    zeroMethod: zeroer.stats.method, zeroFallbackReason: zeroer.stats.fallbackReason,
    directIo: directUsable(target), directFallbackReason: target.directFallbackReason, durationMs: Date.now() - t0,
  };
}
