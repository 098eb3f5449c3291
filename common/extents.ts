/**
 * The extent map of a disk image: which byte ranges hold data and which read
 * as zeros. ospd derives it from `qemu-img map --output=json` at upload and
 * sends it with the deploy command; the agent fetches only the data ranges
 * and zeroes the rest. One list, in order, covering [0, virtualSizeBytes).
 */
import { OspError } from './errors.js';

export interface Extent {
  start: number;
  length: number;
  /** false: the range reads as zeros (a hole, an unallocated or zero cluster). */
  data: boolean;
}

/** One entry of `qemu-img map --output=json` (qemu's block/qapi MapEntry). */
interface QemuMapEntry {
  start: number;
  length: number;
  data?: boolean;
  zero?: boolean;
}

function invalid(field: string, value: unknown, expected: string): OspError {
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : JSON.stringify(value);
  return new OspError('EXTENTS_INVALID', `${field}: ${shown}: expected ${expected}`, { field, value, expected });
}

function isByteCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Converts qemu-img's map (the JSON text or the parsed array) to extents,
 * merging neighbours of the same kind. Only `zero: true` makes a hole:
 * `zero: false` means "not known to be zero" in qemu's terms, so such a
 * range is fetched even when `data` is false (it would read from a backing
 * file, which a standalone raw or qcow2 image does not have, but fetching is
 * the safe side).
 */
export function extentsFromQemuMap(map: string | unknown, virtualSizeBytes?: number): Extent[] {
  let entries: unknown = map;
  if (typeof map === 'string') {
    try {
      entries = JSON.parse(map);
    } catch {
      throw invalid('map', map, 'the JSON array `qemu-img map --output=json` prints');
    }
  }
  if (!Array.isArray(entries)) throw invalid('map', entries, 'an array of map entries');
  const out: Extent[] = [];
  entries.forEach((raw: unknown, i) => {
    const e = raw as QemuMapEntry;
    if (typeof raw !== 'object' || raw === null) throw invalid(`map[${i}]`, raw, 'an object with start and length');
    if (!isByteCount(e.start)) throw invalid(`map[${i}].start`, e.start, 'a whole number of bytes ≥ 0');
    if (!isByteCount(e.length)) throw invalid(`map[${i}].length`, e.length, 'a whole number of bytes ≥ 0');
    if (e.length === 0) return;
    const data = e.zero !== true;
    const last = out[out.length - 1];
    if (last && last.data === data && last.start + last.length === e.start) last.length += e.length;
    else out.push({ start: e.start, length: e.length, data });
  });
  validateExtents(out, virtualSizeBytes ?? (out.length ? out[out.length - 1].start + out[out.length - 1].length : 0));
  return out;
}

/**
 * Checks a received list: in order, contiguous, no empty ranges, covering
 * exactly [0, virtualSizeBytes). Throws EXTENTS_INVALID naming the entry.
 */
export function validateExtents(extents: readonly Extent[], virtualSizeBytes: number, field = 'extents'): void {
  if (!isByteCount(virtualSizeBytes)) throw invalid('virtualSizeBytes', virtualSizeBytes, 'a whole number of bytes ≥ 0');
  if (!Array.isArray(extents)) throw invalid(field, extents, 'an array of { start, length, data }');
  let next = 0;
  extents.forEach((e, i) => {
    if (typeof e !== 'object' || e === null) throw invalid(`${field}[${i}]`, e, 'an object { start, length, data }');
    if (!isByteCount(e.start) || e.start !== next) throw invalid(`${field}[${i}].start`, e.start, `${next} (each extent starts where the previous one ends)`);
    if (!isByteCount(e.length) || e.length === 0) throw invalid(`${field}[${i}].length`, e.length, 'a whole number of bytes > 0');
    if (typeof e.data !== 'boolean') throw invalid(`${field}[${i}].data`, e.data, 'true or false');
    next = e.start + e.length;
  });
  if (next !== virtualSizeBytes) throw invalid(field, `ends at ${next}`, `coverage up to virtualSizeBytes ${virtualSizeBytes}`);
}

/**
 * The extents a byte window overlaps, clipped to it, for windows that move
 * forward through the image (chunks of a file read in order, buffers
 * written in order): a cursor, so the whole pass is linear.
 */
export class ExtentCursor {
  private i = 0;

  constructor(private readonly extents: readonly Extent[]) {}

  /** The pieces of [position, position + length): offsets relative to `position`. */
  within(position: number, length: number): { offset: number; length: number; data: boolean }[] {
    const out: { offset: number; length: number; data: boolean }[] = [];
    const end = position + length;
    const ex = this.extents;
    while (this.i < ex.length && ex[this.i].start + ex[this.i].length <= position) this.i++;
    for (let j = this.i; j < ex.length && ex[j].start < end; j++) {
      const from = Math.max(ex[j].start, position);
      const to = Math.min(ex[j].start + ex[j].length, end);
      out.push({ offset: from - position, length: to - from, data: ex[j].data });
    }
    return out;
  }
}

/** Bytes the data extents hold: what a sparse-aware download transfers. */
export function dataBytes(extents: readonly Extent[]): number {
  return extents.reduce((s, e) => s + (e.data ? e.length : 0), 0);
}
