/**
 * Writes a disk image from ospd to a disk without holding it in memory: the
 * data extents are fetched with HTTP Range requests and written at their
 * offsets through two fixed buffers (one filling from the socket while the
 * other is written), the holes are zeroed on the device, and the sha256 of
 * the raw content — holes hashed as zeros — is checked against the digest
 * the deploy command carried over the authenticated gRPC stream.
 */
import { createHash, type Hash } from 'node:crypto';
import { OspError } from '../../common/errors.js';
import { validateExtents, type Extent } from '../../common/extents.js';
import { RangeFetcher, type RetryPolicy } from './fetch.js';
import { openTarget, type Target } from './target.js';
import { writeAll, Zeroer, type ZeroMethod } from './zero.js';

export interface WriteProgress {
  /** Data written plus holes zeroed. */
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
  durationMs: number;
}

const BUFFER_BYTES = 4 * 1024 * 1024;
const ZERO_BYTES = 4 * 1024 * 1024;
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, backoffMs: 500 };
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_COALESCE_GAP_BYTES = 128 * 1024;
const DEFAULT_PROGRESS_INTERVAL_MS = 500;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The zeros hashed and written for holes: allocated once per process, never written to. */
let sharedZeros: Buffer | null = null;
function zeros(): Buffer {
  sharedZeros ??= Buffer.alloc(ZERO_BYTES);
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

/** Double buffering: the socket fills one buffer while the other is written at its offset. */
class BufferedWriter {
  private buf = Buffer.allocUnsafeSlow(BUFFER_BYTES);
  private spare = Buffer.allocUnsafeSlow(BUFFER_BYTES);
  private fill = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly t: Target, private readonly hash: Hash, private position: number, private readonly written: (n: number) => void) {}

  async push(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const n = chunk.copy(this.buf, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === this.buf.length) await this.flush();
    }
  }

  /** Hands the filled buffer to the disk; waits only for the previous write, so one write is always in flight. */
  async flush(): Promise<void> {
    await this.pending;
    if (this.fill === 0) return;
    const b = this.buf;
    const len = this.fill;
    const at = this.position;
    this.hash.update(b.subarray(0, len));
    const write = writeAll(this.t, b, len, at).then(() => this.written(len));
    // Awaited by the next flush or drain; until then a failure must not count as unhandled (a fetch error may come first).
    write.catch(() => undefined);
    this.pending = write;
    this.buf = this.spare;
    this.spare = b;
    this.fill = 0;
    this.position += len;
  }

  /** Everything pushed is on its way to the disk and the last write finished. */
  async drain(): Promise<void> {
    await this.flush();
    await this.pending;
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
  const expected = String(o.rawSha256).toLowerCase();
  if (!SHA256_HEX.test(expected)) throw invalid('rawSha256', o.rawSha256, '64 hexadecimal digits');
  validateExtents(o.extents, o.virtualSizeBytes);

  const target = await openTarget(o.device, o.virtualSizeBytes);
  const fetcher = new RangeFetcher({ url: o.url, token: o.token, totalBytes: o.virtualSizeBytes, retry, idleTimeoutMs: o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, signal: o.signal });
  const hash = createHash('sha256');
  const zeroer = new Zeroer(target, zeros());
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
  try {
    for (const op of planOps(o.extents, o.coalesceGapBytes ?? DEFAULT_COALESCE_GAP_BYTES)) {
      o.signal?.throwIfAborted();
      if (op.kind === 'fetch') {
        const w = new BufferedWriter(target, hash, op.start, (n) => { done += n; dataBytes += n; report(); });
        await fetcher.fetch(op.start, op.length, (chunk) => w.push(chunk));
        await w.drain();
      } else {
        // The kernel zeroes (a child process or queued writes) while this thread hashes the same zeros.
        const zeroing = zeroer.zero(op.start, op.length);
        const z = zeros();
        for (let off = 0; off < op.length; off += z.length) hash.update(z.subarray(0, Math.min(z.length, op.length - off)));
        await zeroing;
        done += op.length;
        zeroedBytes += op.length;
        report();
      }
    }
    // Durable before anyone reboots into it; the checksum then speaks for what is on the disk.
    await target.fh.sync();
  } finally {
    fetcher.close();
    await target.fh.close();
  }
  const actual = hash.digest('hex');
  if (actual !== expected) {
    throw new OspError('IMAGE_CHECKSUM_MISMATCH', `image checksum mismatch: expected sha256 ${expected}, wrote ${actual} (url ${o.url}, device ${o.device})`, {
      field: 'rawSha256', value: actual, expected, url: o.url, device: o.device,
    });
  }
  report(true);
  return {
    sha256: actual, virtualSizeBytes: o.virtualSizeBytes, dataBytes, zeroedBytes,
    networkBytes: fetcher.stats.networkBytes, requests: fetcher.stats.requests, resumes: fetcher.stats.resumes,
    zeroMethod: zeroer.stats.method, zeroFallbackReason: zeroer.stats.fallbackReason, durationMs: Date.now() - t0,
  };
}
