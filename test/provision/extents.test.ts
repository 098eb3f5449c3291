/**
 * The extent converter on real `qemu-img map --output=json` output of a
 * qcow2 and a sparse raw file, and its refusals of bad input.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataBytes, ExtentCursor, extentsFromQemuMap, validateExtents } from '../../common/extents.js';
import { MIB, run, sparseRaw } from './images.js';

const dir = mkdtempSync(path.join(tmpdir(), 'osp-extents-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const WRITES: [number, number][] = [[1 * MIB, 2 * MIB], [20 * MIB, 64 * 1024], [40 * MIB + 4096, 3 * MIB]];
const SIZE = 64 * MIB;

function covers(extents: { start: number; length: number; data: boolean }[], off: number, len: number): boolean {
  return extents.some((e) => e.data && e.start <= off && e.start + e.length >= off + len);
}

describe('extentsFromQemuMap', () => {
  it('maps a sparse raw file: the written ranges are data, the large gaps holes, coverage exact', () => {
    const raw = path.join(dir, 'a.raw');
    sparseRaw(raw, SIZE, WRITES);
    const ex = extentsFromQemuMap(run('qemu-img', ['map', '--output=json', '-f', 'raw', raw]), SIZE);
    validateExtents(ex, SIZE);
    for (const [off, len] of WRITES) expect(covers(ex, off, len)).toBe(true);
    // The 17 MiB between the first two writes is a hole.
    expect(ex.some((e) => !e.data && e.start <= 4 * MIB && e.start + e.length >= 19 * MIB)).toBe(true);
    // Neighbours of one kind are merged: kinds alternate.
    for (let i = 1; i < ex.length; i++) expect(ex[i].data).not.toBe(ex[i - 1].data);
    expect(dataBytes(ex)).toBeLessThan(6 * MIB + 64 * 1024 + 8192);
  });

  it('maps a qcow2 made from it, including a zero cluster (zero: true, present: true) as a hole', () => {
    const raw = path.join(dir, 'a.raw');
    const q = path.join(dir, 'a.qcow2');
    run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, q]);
    run('qemu-io', ['-c', `write -z ${50 * MIB} ${MIB}`, q]);
    const text = run('qemu-img', ['map', '--output=json', q]);
    expect(text).toMatch(/"present": true, "zero": true/);
    const ex = extentsFromQemuMap(text, SIZE);
    validateExtents(ex, SIZE);
    for (const [off, len] of WRITES) expect(covers(ex, off, len)).toBe(true);
    expect(ex.some((e) => !e.data && e.start <= 50 * MIB && e.start + e.length >= 51 * MIB)).toBe(true);
  });

  it('refuses input that is not a map, naming the field', () => {
    expect(() => extentsFromQemuMap('not json')).toThrow(/^map: "not json": expected the JSON array/);
    expect(() => extentsFromQemuMap([{ start: 0, length: -1 }])).toThrow(/^map\[0\]\.length: -1: expected a whole number/);
    expect(() => extentsFromQemuMap([{ start: 0, length: 512, data: true, zero: false }], 1024)).toThrow(/^extents: "ends at 512": expected coverage up to virtualSizeBytes 1024/);
  });

  it('validateExtents names a gap, an overlap and a bad flag', () => {
    expect(() => validateExtents([{ start: 0, length: 10, data: true }, { start: 11, length: 5, data: false }], 16)).toThrow(/^extents\[1\]\.start: 11: expected 10/);
    expect(() => validateExtents([{ start: 0, length: 0, data: true }], 0)).toThrow(/^extents\[0\]\.length: 0/);
    expect(() => validateExtents([{ start: 0, length: 4, data: 'yes' as unknown as boolean }], 4)).toThrow(/^extents\[0\]\.data: "yes": expected true or false/);
    expect(() => validateExtents([], 0)).not.toThrow();
  });
});

describe('ExtentCursor', () => {
  it('clips the extents a forward-moving window overlaps, windows straddling extent edges included', () => {
    const c = new ExtentCursor([{ start: 0, length: 10, data: true }, { start: 10, length: 5, data: false }, { start: 15, length: 20, data: true }]);
    expect(c.within(0, 8)).toEqual([{ offset: 0, length: 8, data: true }]);
    expect(c.within(8, 10)).toEqual([{ offset: 0, length: 2, data: true }, { offset: 2, length: 5, data: false }, { offset: 7, length: 3, data: true }]);
    expect(c.within(18, 17)).toEqual([{ offset: 0, length: 17, data: true }]);
  });
});
