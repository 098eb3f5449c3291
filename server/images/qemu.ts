/**
 * The qemu-img calls the image store makes. qemu-img is the reference for
 * both formats: it reads the header (info), verifies a qcow2's metadata
 * against the file (check: a truncated upload shows as clusters past the
 * end), writes the sparse raw file (convert leaves holes where blocks are
 * zero) and reports where its data lies (map: SEEK_DATA/SEEK_HOLE).
 * The format is always passed explicitly, so qemu-img never probes a file
 * we already classified.
 */
import { execFile } from 'node:child_process';
import { OspError } from '../../common/errors.js';

export type DiskFormat = 'raw' | 'qcow2';

/** A run of the raw image: data, or a hole that reads as zeros. */
export interface Extent {
  start: number;
  length: number;
  data: boolean;
}

/** Long enough for a multi-GiB convert on a slow disk; a hung qemu-img must not hold an upload forever. */
const QEMU_TIMEOUT_MS = 30 * 60_000;

function qemuImg(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('qemu-img', args, { timeout: QEMU_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new OspError('FAILED_PRECONDITION', 'qemu-img not found: ospd needs it to store images (Debian package qemu-utils)'));
      }
      if (err && err.killed) return reject(new OspError('INTERNAL', `qemu-img ${args[0]} did not finish in ${QEMU_TIMEOUT_MS} ms`));
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
}

export interface QemuInfo {
  format: string;
  virtualSizeBytes: number;
  backingFile?: string;
  dataFile?: string;
}

/** `qemu-img info`; without `format`, qemu-img probes the header (used only to confirm a claimed raw file). */
export async function qemuInfo(file: string, format?: DiskFormat): Promise<QemuInfo> {
  const r = await qemuImg(['info', '--output=json', ...(format ? ['-f', format] : []), file]);
  if (r.code !== 0) throw new OspError('IMAGE_INVALID', `image: qemu-img info failed: ${firstLine(r.stderr)}`, { field: 'chunk', expected: 'a readable raw or qcow2 image' });
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  const specific = (j['format-specific'] as { data?: Record<string, unknown> } | undefined)?.data;
  return {
    format: String(j.format),
    virtualSizeBytes: Number(j['virtual-size']),
    backingFile: typeof j['backing-filename'] === 'string' ? j['backing-filename'] : undefined,
    dataFile: typeof specific?.['data-file'] === 'string' ? specific['data-file'] : undefined,
  };
}

/** Corruptions qemu-img check finds in a qcow2's metadata (0 = consistent; leaked clusters are harmless and not counted). */
export async function qcow2CheckErrors(file: string): Promise<{ errors: number; detail: string }> {
  const r = await qemuImg(['check', '--output=json', '-f', 'qcow2', file]);
  // Exit 0: clean; 3: only leaks; 2: corruptions; 1: the check could not complete.
  let errors: number;
  try {
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    // corruptions: metadata pointing past the end of the file (a truncated upload); check-errors: the check itself failed.
    errors = Number(j.corruptions ?? 0) + Number(j['check-errors'] ?? 0);
  } catch {
    errors = r.code === 0 || r.code === 3 ? 0 : 1;
  }
  if (r.code === 1 || r.code === 2) errors = Math.max(errors, 1);
  return { errors, detail: firstLine(r.stderr) };
}

/** Writes `src` as a raw file; zero blocks become holes. */
export async function convertToRaw(src: string, format: DiskFormat, dst: string): Promise<void> {
  const r = await qemuImg(['convert', '-f', format, '-O', 'raw', src, dst]);
  if (r.code !== 0) throw new OspError('IMAGE_INVALID', `image: qemu-img convert failed: ${firstLine(r.stderr)}`, { field: 'chunk', expected: `a readable ${format} image` });
}

/** Where `file`'s data lies; adjacent runs of the same kind are merged. */
export async function extentMap(file: string, format: DiskFormat): Promise<Extent[]> {
  const r = await qemuImg(['map', '--output=json', '-f', format, file]);
  if (r.code !== 0) throw new OspError('INTERNAL', `qemu-img map failed: ${firstLine(r.stderr)}`);
  const out: Extent[] = [];
  for (const e of JSON.parse(r.stdout) as { start: number; length: number; data: boolean; zero?: boolean }[]) {
    // A range qemu-img knows reads as zeros needs no transfer, whether or not it is allocated.
    const data = e.data && !e.zero;
    const last = out[out.length - 1];
    if (last && last.data === data && last.start + last.length === e.start) last.length += e.length;
    else out.push({ start: e.start, length: e.length, data });
  }
  return out;
}

export function dataBytes(extents: Extent[]): number {
  return extents.reduce((n, e) => n + (e.data ? e.length : 0), 0);
}
