import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export const VIRTUAL_BYTES = 64 * 1024 * 1024;

/** A sparse 64 MiB raw disk with 3 MiB of random data in two runs, its qcow2, and a qcow2 cut short. */
export function makeImages(dir: string): { raw: string; qcow2: string; truncated: string; reference: string } {
  const raw = path.join(dir, 'disk.raw');
  const fd = openSync(raw, 'w');
  ftruncateSync(fd, VIRTUAL_BYTES);
  writeSync(fd, randomBytes(2 * 1024 * 1024), 0, 2 * 1024 * 1024, 3 * 1024 * 1024);
  writeSync(fd, randomBytes(1024 * 1024), 0, 1024 * 1024, 40 * 1024 * 1024);
  closeSync(fd);
  const qcow2 = path.join(dir, 'disk.qcow2');
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  const truncated = path.join(dir, 'cut.qcow2');
  writeFileSync(truncated, readFileSync(qcow2).subarray(0, 300_000));
  // What the written disk must equal: qemu-img's own raw conversion of the qcow2.
  const reference = path.join(dir, 'reference.raw');
  execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, reference]);
  return { raw, qcow2, truncated, reference };
}

/** sha256sum / sha512sum, the coreutils tools, as the operator would run them. */
export function coreutilsSum(tool: 'sha256sum' | 'sha512sum', file: string): string {
  return execFileSync(tool, [file], { encoding: 'utf8' }).split(/\s+/)[0];
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}
