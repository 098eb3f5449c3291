/**
 * Zeroes the holes of an image on the target. Large aligned ranges go to the
 * kernel — `blkdiscard --zeroout` (BLKZEROOUT: the device's write-zeroes
 * command, or the kernel writing zeros itself) on a block device,
 * `fallocate --punch-hole` on a file — and the rest is written from a
 * shared zero buffer. A target is never assumed to be zero already: a disk
 * that held another system reads back its old bytes in every skipped range.
 */
import { runProcess } from '../process/run-process.js';
import type { Target } from './target.js';

export type ZeroMethod = 'blkdiscard' | 'punch-hole' | 'write';

export interface ZeroStats {
  method: ZeroMethod;
  /** Why the kernel method was given up for writing zeros, when it was. */
  fallbackReason?: string;
  kernelBytes: number;
  writtenBytes: number;
}

/** Below this a process spawn costs more than writing the zeros. */
const KERNEL_MIN_BYTES = 1024 * 1024;
/** Floor for the time a kernel zeroing may take: slow disks without write-zeroes get the kernel writing at ~20 MB/s. */
const KERNEL_MIN_TIMEOUT_MS = 60_000;
const KERNEL_MIN_BYTES_PER_MS = 20_000;

export async function writeAll(t: Target, buf: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await t.fh.write(buf, done, length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`${t.device}: write at ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}

export class Zeroer {
  readonly stats: ZeroStats;

  constructor(private readonly t: Target, private readonly zeros: Buffer) {
    this.stats = { method: t.kind === 'block' ? 'blkdiscard' : 'punch-hole', kernelBytes: 0, writtenBytes: 0 };
  }

  async zero(start: number, length: number): Promise<void> {
    const end = start + length;
    const align = this.t.zeroAlignBytes;
    const a = Math.ceil(start / align) * align;
    const b = Math.floor(end / align) * align;
    if (this.stats.method === 'write' || b - a < KERNEL_MIN_BYTES) return this.writeZeros(start, length);
    await this.writeZeros(start, a - start);
    if (await this.kernelZero(a, b - a)) this.stats.kernelBytes += b - a;
    else await this.writeZeros(a, b - a);
    await this.writeZeros(b, end - b);
  }

  private async writeZeros(start: number, length: number): Promise<void> {
    for (let off = 0; off < length; off += this.zeros.length) {
      await writeAll(this.t, this.zeros, Math.min(this.zeros.length, length - off), start + off);
    }
    this.stats.writtenBytes += length;
  }

  /** false (and writing from then on) when the tool is missing or the device or filesystem refuses. */
  private async kernelZero(start: number, length: number): Promise<boolean> {
    const [file, args] = this.t.kind === 'block'
      ? ['blkdiscard', ['--zeroout', '--offset', String(start), '--length', String(length), this.t.device]]
      // --punch-hole implies --keep-size: the file keeps its size, the range reads as zeros.
      : ['fallocate', ['--punch-hole', '--offset', String(start), '--length', String(length), this.t.device]];
    const out = await runProcess(file, { args, env: process.env, timeoutMs: Math.max(KERNEL_MIN_TIMEOUT_MS, length / KERNEL_MIN_BYTES_PER_MS) });
    if (out.exitCode === 0 && !out.timedOut && !out.spawnError) return true;
    this.stats.fallbackReason = `${file} ${args.join(' ')}: ${out.spawnError ?? (out.timedOut ? 'timed out' : out.stderrTail.trim() || `exit ${out.exitCode}`)}`;
    this.stats.method = 'write';
    return false;
  }
}
