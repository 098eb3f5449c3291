import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOspError } from '../../common/errors.js';
import { writeConfigDrive } from '../../agent/provision/config-drive-partition.js';
import { buildConfigDrive } from '../../server/provision/config-drive.js';
import { cloudInitCandidates, loopAttach, loopDetach, partitionNode, sampleInput, sh } from './config-drive-helpers.js';

const MIB = 1024 * 1024;
const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-cd-part-'));
let drive: Buffer;

beforeAll(async () => {
  drive = await buildConfigDrive(sampleInput(path.join(dir, 'work')));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function hashRange(file: string, offset: number, length: number): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, offset);
    return createHash('sha256').update(buf).digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** Fills a byte range with random data, so "untouched" is checkable. */
function fillRandom(file: string, offset: number, length: number): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, randomBytes(length), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

interface Table { label: string; partitions: { node: string; start: number; size: number; type: string; name?: string }[] }
async function table(dev: string): Promise<Table> {
  return (JSON.parse(await sh('sfdisk', ['--json', dev])) as { partitiontable: Table }).partitiontable;
}

function refusal(e: unknown): string {
  expect(isOspError(e) && e.code === 'CONFIG_DRIVE_PARTITION_REFUSED', String(e)).toBe(true);
  expect((e as Error).message).not.toContain('\n');
  return (e as Error).message;
}

describe('writeConfigDrive', () => {
  it("GPT image smaller than the disk: the backup header moves to the end, the drive becomes the last partition, cloud-init finds it, the image's partition is untouched", async () => {
    const img = path.join(dir, 'gpt.img');
    const imageBytes = 24 * MIB;
    writeFileSync(img, '');
    truncateSync(img, imageBytes);
    await sh('sgdisk', ['-n', '1:2048:0', '-t', '1:8300', img]);
    const p1 = (await table(img)).partitions[0];
    fillRandom(img, p1.start * 512, p1.size * 512);
    const before = hashRange(img, p1.start * 512, p1.size * 512);
    truncateSync(img, 64 * MIB); // the disk is larger than the image written to it

    const dev = await loopAttach(img, true);
    try {
      const r = await writeConfigDrive({ device: dev, imageBytes, driveBytes: drive });
      expect(r).toMatchObject({ table: 'gpt', partitionNumber: 2 });
      const t = await table(dev);
      expect(t.partitions).toHaveLength(2);
      const p2 = t.partitions[1];
      expect(p2.start * 512).toBe(r.offsetBytes);
      // Last usable sector is 33 before the end (backup GPT); the start is 1 MiB aligned.
      expect((p2.start + p2.size) * 512).toBeGreaterThan(64 * MIB - MIB - 34 * 512);
      expect(p2.start % 2048).toBe(0);
      expect(p2.name).toBe('config-2');
      expect(hashRange(img, p1.start * 512, p1.size * 512)).toBe(before);
      await sh('sgdisk', ['-v', dev]); // a consistent GPT, backup header at the disk's end
      const node = await partitionNode(dev, 2);
      expect((await sh('blkid', ['-p', '-o', 'export', node]))).toMatch(/^LABEL=config-2$/m);
      expect(await cloudInitCandidates()).toContain(node);
    } finally {
      await loopDetach(dev);
    }
  });

  it('MBR with one primary partition gets a second one at the end holding the drive', async () => {
    const img = path.join(dir, 'mbr1.img');
    writeFileSync(img, '');
    truncateSync(img, 16 * MIB);
    await sh('sfdisk', ['-q', img], { input: 'start=2048, size=8MiB, type=83\n' });
    truncateSync(img, 32 * MIB);
    const r = await writeConfigDrive({ device: img, imageBytes: 16 * MIB, driveBytes: drive });
    expect(r).toMatchObject({ table: 'dos', partitionNumber: 2 });
    const t = await table(img);
    expect(t.partitions.map((p) => p.type)).toEqual(['83', '83']);
    expect(t.partitions[1].start * 512).toBe(r.offsetBytes);
    expect(r.offsetBytes + r.sizeBytes).toBeLessThanOrEqual(32 * MIB);
    expect(r.offsetBytes + r.sizeBytes).toBeGreaterThan(31 * MIB);
    expect(await sh('blkid', ['-p', '-o', 'export', '--offset', String(r.offsetBytes), img])).toMatch(/^LABEL=config-2$/m);
    expect(await sh('mdir', ['-/', '-b', '-i', `${img}@@${r.offsetBytes}`, '::/openstack/latest'])).toContain('meta_data.json');
  });

  it('MBR with four primary partitions is refused, naming them', async () => {
    const img = path.join(dir, 'mbr4.img');
    writeFileSync(img, '');
    truncateSync(img, 32 * MIB);
    await sh('sfdisk', ['-q', img], { input: 'size=4MiB\nsize=4MiB\nsize=4MiB\nsize=4MiB\n' });
    const before = hashRange(img, 0, 32 * MIB);
    const e = await writeConfigDrive({ device: img, imageBytes: 20 * MIB, driveBytes: drive }).catch((x: unknown) => x);
    expect(refusal(e)).toBe(`device: ${img}: MBR has all four primary partitions in use (${img}1, ${img}2, ${img}3, ${img}4); the config drive needs a free primary slot (use a GPT image)`);
    expect(hashRange(img, 0, 32 * MIB)).toBe(before);
  });

  it('a disk without a partition table (a whole-disk filesystem) is refused', async () => {
    const img = path.join(dir, 'raw.img');
    writeFileSync(img, '');
    truncateSync(img, 16 * MIB);
    await sh('mkfs.ext4', ['-q', '-F', img]);
    const e = await writeConfigDrive({ device: img, imageBytes: 16 * MIB, driveBytes: drive }).catch((x: unknown) => x);
    expect(refusal(e)).toMatch(/^device: .*raw\.img: no partition table \(a whole-disk filesystem image\?\)/);
  });

  it('an image that fills the disk leaves no room, and says how much is needed', async () => {
    const img = path.join(dir, 'full.img');
    writeFileSync(img, '');
    truncateSync(img, 16 * MIB);
    await sh('sgdisk', ['-n', '1:2048:0', img]);
    const e = await writeConfigDrive({ device: img, imageBytes: 16 * MIB, driveBytes: drive }).catch((x: unknown) => x);
    expect(refusal(e)).toMatch(/no room for a \d+-byte config drive partition at the disk's end: the disk holds 16777216 bytes/);
  });
});
