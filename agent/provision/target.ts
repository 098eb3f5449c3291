/**
 * The disk an image is written to: a block device in the ramdisk, or a
 * regular file standing in for one in tests. Checked before the first byte
 * is written so a wrong path or a too-small disk fails the deploy at once.
 */
import { constants } from 'node:fs';
import { open, readFile, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { OspError } from '../../common/errors.js';
import { runProcess } from '../process/run-process.js';

export type TargetKind = 'block' | 'file';

export interface Target {
  device: string;
  kind: TargetKind;
  sizeBytes: number;
  /** Zeroing through the kernel (blkdiscard / fallocate) is done in multiples of this. */
  zeroAlignBytes: number;
  fh: FileHandle;
  /**
   * The same block device opened O_DIRECT, for writes aligned to
   * `directAlignBytes`; null for files. Used while `directFallbackReason`
   * is unset; closed with the target, never mid-write (other writes may be
   * on it when one is refused).
   * Writing through the page cache of a disk costs twice: a copy into the
   * cache and then its writeback, which on the benchmark's loop device made
   * the buffered writer three times slower than the network; in a ramdisk
   * the cache also takes memory the machine has little of (Ironic's agent
   * writes with qemu-img's directsync for the same reasons).
   */
  direct: FileHandle | null;
  directAlignBytes: number;
  /** Why direct writes were given up, when they were. */
  directFallbackReason?: string;
}

const PAGE_BYTES = 4096;

async function sysfs(name: string, attr: string): Promise<number | null> {
  const text = await readFile(`/sys/class/block/${name}/${attr}`, 'utf8').catch(() => null);
  const n = text === null ? NaN : Number(text.trim());
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * A block device's size: sysfs counts 512-byte sectors whatever the
 * device's own sector size; `blockdev --getsize64` where sysfs has no entry
 * (device-mapper names under /dev/mapper resolve to dm-N, which sysfs has,
 * but a container may hide /sys).
 */
export async function blockDeviceSizeBytes(device: string): Promise<number> {
  const name = path.basename(await realpath(device));
  const sectors = await sysfs(name, 'size');
  if (sectors !== null) return sectors * 512;
  const out = await runProcess('blockdev', { args: ['--getsize64', device], env: process.env, timeoutMs: 10_000, captureFullStdout: true });
  const n = Number((out.stdout ?? '').trim());
  if (out.exitCode !== 0 || !Number.isSafeInteger(n)) {
    throw new OspError('DEPLOY_TARGET_INVALID', `device: ${device}: size unknown (no /sys/class/block/${name}/size, blockdev: ${out.spawnError ?? out.stderrTail.trim()})`, { field: 'device', value: device, expected: 'a block device whose size can be read' });
  }
  return n;
}

/** Whether aligned writes still go through the O_DIRECT handle. */
export function directUsable(t: Target): boolean {
  return t.direct !== null && t.directFallbackReason === undefined;
}

/** Closes both handles. */
export async function closeTarget(t: Target): Promise<void> {
  await Promise.all([t.fh.close(), t.direct?.close()]);
}

/** Opens the target for positional writes after checking it exists, is a disk or file, and is large enough. */
export async function openTarget(device: string, virtualSizeBytes: number): Promise<Target> {
  const st = await stat(device).catch((e: NodeJS.ErrnoException) => {
    throw new OspError('DEPLOY_TARGET_INVALID', `device: ${device}: ${e.code === 'ENOENT' ? 'does not exist' : e.message}`, { field: 'device', value: device, expected: 'an existing block device' });
  });
  let kind: TargetKind;
  let sizeBytes: number;
  let zeroAlignBytes = PAGE_BYTES;
  let directAlignBytes = PAGE_BYTES;
  if (st.isBlockDevice()) {
    kind = 'block';
    sizeBytes = await blockDeviceSizeBytes(device);
    const name = path.basename(await realpath(device));
    const logical = (await sysfs(name, 'queue/logical_block_size')) ?? 512;
    // Page-aligned at least: the kernel drops cached pages of a zeroed range, and a page shared with data must not be one of them.
    zeroAlignBytes = Math.max(PAGE_BYTES, logical);
    directAlignBytes = Math.max(512, logical);
  } else if (st.isFile()) {
    kind = 'file';
    sizeBytes = st.size;
  } else {
    throw new OspError('DEPLOY_TARGET_INVALID', `device: ${device}: not a block device or regular file`, { field: 'device', value: device, expected: 'a block device (or a regular file in tests)' });
  }
  if (sizeBytes < virtualSizeBytes) {
    throw new OspError('DEPLOY_TARGET_TOO_SMALL', `device: ${device} holds ${sizeBytes} bytes; the image needs ${virtualSizeBytes} bytes (virtual size)`, {
      field: 'device', value: device, expected: `at least ${virtualSizeBytes} bytes`, deviceSizeBytes: sizeBytes, virtualSizeBytes,
    });
  }
  // 'r+': read/write without O_CREAT, so a mistyped path never becomes a new file.
  const fh = await open(device, 'r+');
  let direct: FileHandle | null = null;
  let directFallbackReason: string | undefined;
  if (kind === 'block') {
    direct = await open(device, constants.O_RDWR | constants.O_DIRECT).catch((e: Error) => {
      directFallbackReason = `O_DIRECT open of ${device}: ${e.message}`;
      return null;
    });
  }
  return { device, kind, sizeBytes, zeroAlignBytes, fh, direct, directAlignBytes, directFallbackReason };
}
