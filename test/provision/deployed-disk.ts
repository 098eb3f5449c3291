/**
 * Reading a deployed disk (a file: a fake machine's /dev/vda or a lab
 * machine's backing file) from the host, without mounting anything.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { run } from './images.js';

/** A file of the config drive partition's openstack/latest, read with mtools at the last partition's offset. */
export function driveFile(disk: string, name: string): string {
  const table = JSON.parse(run('sfdisk', ['--json', disk])) as { partitiontable: { partitions: { start: number }[]; sectorsize?: number } };
  const parts = table.partitiontable.partitions;
  const offset = parts[parts.length - 1].start * (table.partitiontable.sectorsize ?? 512);
  return run('mtype', ['-i', `${disk}@@${offset}`, `::openstack/latest/${name}`]);
}

export async function sha256Range(file: string, start: number, length: number): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { start, end: start + length - 1 })) h.update(c as Buffer);
  return h.digest('hex');
}
