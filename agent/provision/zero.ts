/**
 * Zeroes the holes of an image on the target. The aligned interiors of all
 * holes go to the kernel through ONE child process started at the outset —
 * `blkdiscard --zeroout` (BLKZEROOUT: the device's write-zeroes command, or
 * the kernel writing zeros itself) on a block device, `fallocate
 * --punch-hole` on a file — while the data streams in beside it (holes and
 * data never share a page, so the two cannot overwrite each other). A spawn
 * from a process the agent's size costs tens of milliseconds, more than the
 * zeroing itself, so the ranges go to one `sh` loop on its stdin. The
 * unaligned edges are written from a shared zero buffer. A target is never
 * assumed to be zero already: a disk that held another system reads back
 * its old bytes in every skipped range.
 */
import { runProcess } from '../process/run-process.js';
import type { FileHandle } from 'node:fs/promises';
import { directUsable, type Target } from './target.js';

export type ZeroMethod = 'blkdiscard' | 'punch-hole' | 'write';

export interface ZeroStats {
  method: ZeroMethod;
  /** Why the kernel method was given up for writing zeros, when it was. */
  fallbackReason?: string;
  kernelBytes: number;
  writtenBytes: number;
}

export interface Range {
  start: number;
  length: number;
}

/** Below this a fork of the tool costs more than writing the zeros. */
const KERNEL_MIN_BYTES = 1024 * 1024;
/** Floor for the time the kernel zeroing may take: slow disks without write-zeroes get the kernel writing at ~20 MB/s. */
const KERNEL_MIN_TIMEOUT_MS = 60_000;
const KERNEL_MIN_BYTES_PER_MS = 20_000;
/** `$1` is the device; each stdin line "OFFSET LENGTH"; the first failure stops the loop with the tool's message. */
const KERNEL_LOOP = {
  blkdiscard: 'd=$1; while read -r o l; do blkdiscard --zeroout --offset "$o" --length "$l" "$d" || exit 1; done',
  // --punch-hole implies --keep-size: the file keeps its size, the range reads as zeros.
  'punch-hole': 'd=$1; while read -r o l; do fallocate --punch-hole --offset "$o" --length "$l" "$d" || exit 1; done',
};

/**
 * Writes `length` bytes at `position`: through O_DIRECT when the target has
 * it and the range is aligned (the image's extents are, in filesystem
 * blocks), else through the page cache, flushed by the final fsync. A
 * buffer the kernel refuses for direct I/O (EINVAL: its memory alignment)
 * ends direct writes for the rest of the target's life.
 */
export async function writeAll(t: Target, buf: Buffer, length: number, position: number): Promise<void> {
  if (t.direct && directUsable(t) && position % t.directAlignBytes === 0 && length % t.directAlignBytes === 0) {
    try {
      return await writeLoop(t, t.direct, buf, length, position);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      t.directFallbackReason ??= `O_DIRECT write of ${length} bytes at ${position} to ${t.device}: ${(e as Error).message}`;
    }
  }
  return writeLoop(t, t.fh, buf, length, position);
}

async function writeLoop(t: Target, fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`${t.device}: write at ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}

export class Zeroer {
  readonly stats: ZeroStats;

  constructor(private readonly t: Target, private readonly zeros: Buffer) {
    this.stats = { method: t.kind === 'block' ? 'blkdiscard' : 'punch-hole', kernelBytes: 0, writtenBytes: 0 };
  }

  /** Zeroes every range; resolves when all of them read back as zeros (after the caller's fsync for the written part). */
  async zeroAll(holes: readonly Range[]): Promise<void> {
    const align = this.t.zeroAlignBytes;
    const kernel: Range[] = [];
    const edges: Range[] = [];
    for (const { start, length } of holes) {
      const end = start + length;
      const a = Math.ceil(start / align) * align;
      const b = Math.floor(end / align) * align;
      if (b - a < KERNEL_MIN_BYTES) {
        edges.push({ start, length });
        continue;
      }
      kernel.push({ start: a, length: b - a });
      edges.push({ start, length: a - start }, { start: b, length: end - b });
    }
    const kernelDone = this.kernelZero(kernel);
    for (const r of edges) await this.writeZeros(r.start, r.length);
    if (await kernelDone) this.stats.kernelBytes += kernel.reduce((s, r) => s + r.length, 0);
    else for (const r of kernel) await this.writeZeros(r.start, r.length);
  }

  private async writeZeros(start: number, length: number): Promise<void> {
    for (let off = 0; off < length; off += this.zeros.length) {
      await writeAll(this.t, this.zeros, Math.min(this.zeros.length, length - off), start + off);
    }
    this.stats.writtenBytes += length;
  }

  /** false (and writing from then on) when a tool is missing or the device or filesystem refuses. */
  private async kernelZero(ranges: readonly Range[]): Promise<boolean> {
    if (ranges.length === 0) return true;
    const method = this.stats.method === 'blkdiscard' ? 'blkdiscard' : 'punch-hole';
    const total = ranges.reduce((s, r) => s + r.length, 0);
    const out = await runProcess('sh', {
      args: ['-c', KERNEL_LOOP[method], 'sh', this.t.device], env: process.env,
      stdin: ranges.map((r) => `${r.start} ${r.length}\n`).join(''),
      timeoutMs: Math.max(KERNEL_MIN_TIMEOUT_MS, total / KERNEL_MIN_BYTES_PER_MS),
    });
    if (out.exitCode === 0 && !out.timedOut && !out.spawnError) return true;
    this.stats.fallbackReason = `${method === 'blkdiscard' ? 'blkdiscard --zeroout' : 'fallocate --punch-hole'} on ${this.t.device}: ${out.spawnError ?? (out.timedOut ? 'timed out' : out.stderrTail.trim() || `exit ${out.exitCode}`)}`;
    this.stats.method = 'write';
    return false;
  }
}
