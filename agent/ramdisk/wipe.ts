import { execFile } from 'node:child_process';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { blockDeviceSizeBytes } from '../provision/target.js';

export const MIB = 1024 * 1024;
const CHUNK_BYTES = 4 * MIB;

export interface WipeTarget {
  path: string;
  sizeBytes: number;
}

/** Kernel disk names; partitions, loop, ram and zram devices are never targets. */
const DISK_NAME = /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+|nvme\d+n\d+|mmcblk\d+)$/;

/**
 * Every whole, writable disk of the machine, from lsblk: only TYPE=disk,
 * not read-only, and named like a real disk (the guard against wiping a
 * loop-mounted ramdisk or an optical drive).
 */
export function hostDisks(timeoutMs = 20_000): Promise<WipeTarget[]> {
  return new Promise((resolve, reject) => {
    execFile('lsblk', ['--json', '--bytes', '--nodeps', '--output', 'KNAME,TYPE,SIZE,RO'], { timeout: timeoutMs }, (err, stdout) => {
      if (err) return reject(new Error(`lsblk failed: ${err.message}`));
      const devs = (JSON.parse(stdout) as { blockdevices?: { kname: string; type: string; size: number | string; ro: boolean | string }[] }).blockdevices ?? [];
      resolve(devs
        .filter((d) => d.type === 'disk' && DISK_NAME.test(d.kname) && d.ro !== true && d.ro !== '1' && Number(d.size) > 0)
        .map((d) => ({ path: `/dev/${d.kname}`, sizeBytes: Number(d.size) })));
    });
  });
}

/**
 * With --root DIR (tests, chroots) the disks are the files under DIR/dev
 * named like kernel disks: image files or loop devices a test put there.
 */
export async function rootDisks(root: string): Promise<WipeTarget[]> {
  const dir = path.join(root, 'dev');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => DISK_NAME.test(n)).sort();
  const out: WipeTarget[] = [];
  for (const n of names) {
    const p = path.join(dir, n);
    const st = await stat(p);
    if (st.isFile()) out.push({ path: p, sizeBytes: st.size });
    else if (st.isBlockDevice()) out.push({ path: p, sizeBytes: await blockDeviceSizeBytes(p).catch(() => 0) });
  }
  return out;
}

/** Byte offsets where the disk's partitions start, from sfdisk; none when it reads no table. */
function partitionStartsBytes(device: string, timeoutMs = 20_000): Promise<number[]> {
  return new Promise((resolve) => {
    execFile('sfdisk', ['--json', device], { timeout: timeoutMs }, (err, stdout) => {
      if (err) return resolve([]);
      try {
        const t = (JSON.parse(stdout) as { partitiontable?: { sectorsize?: number; partitions?: { start: number }[] } }).partitiontable;
        resolve((t?.partitions ?? []).map((x) => x.start * (t?.sectorsize ?? 512)));
      } catch {
        resolve([]);
      }
    });
  });
}

/**
 * Zeroes byte ranges: the metadata erase covers the first and the last MiB,
 * where MBR/GPT (primary and backup) and RAID/LVM labels at the end live, and
 * the first MiB of every partition, where file system superblocks live (as
 * IPA wipes each partition's signatures): a config drive, which holds a node
 * token, sits more than a MiB before the disk's end. Full erase covers everything.
 */
export async function wipeDisk(t: WipeTarget, mode: 'metadata' | 'full', progress: (doneBytes: number, totalBytes: number) => void = () => undefined): Promise<number> {
  const tailStart = t.sizeBytes - MIB;
  const partitions = mode === 'full' || t.sizeBytes <= 2 * MIB ? [] : (await partitionStartsBytes(t.path))
    .filter((s) => s >= MIB && s < tailStart)
    .map((s): [number, number] => [s, Math.min(s + MIB, tailStart)]);
  const ranges: [number, number][] = mode === 'full' || t.sizeBytes <= 2 * MIB
    ? [[0, t.sizeBytes]]
    : [[0, MIB], ...partitions, [tailStart, t.sizeBytes]];
  const total = ranges.reduce((s, [a, b]) => s + (b - a), 0);
  const zeros = Buffer.alloc(CHUNK_BYTES);
  const fh = await open(t.path, 'r+');
  let done = 0;
  try {
    for (const [start, end] of ranges) {
      for (let off = start; off < end; off += CHUNK_BYTES) {
        const len = Math.min(CHUNK_BYTES, end - off);
        await fh.write(zeros, 0, len, off);
        done += len;
        progress(done, total);
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return done;
}
