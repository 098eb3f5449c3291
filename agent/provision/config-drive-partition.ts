import { open, stat } from 'node:fs/promises';
import { OspError } from '../../common/errors.js';
import { runProcess } from '../process/run-process.js';
import { blockDeviceSizeBytes } from './target.js';

/**
 * Writes ospd's config drive as a new partition at the end of the disk the
 * image was just written to, as ironic-python-agent does: cloud-init finds it
 * by its `config-2` label, and the image's own partitions stay untouched.
 */

const MIB = 1024 * 1024;
const TOOL_TIMEOUT_MS = 30_000;
/** Linux filesystem data (GPT) / Linux (MBR): what IPA gives the config drive partition. */
const GPT_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const MBR_TYPE = '83';
const MBR_PRIMARY_SLOTS = 4;

export interface WriteConfigDriveOptions {
  /** The whole disk (block device, or an image file in tests). */
  device: string;
  /** The image's virtual size: the new partition never starts inside what was written. */
  imageBytes: number;
  driveBytes: Buffer;
}

export interface ConfigDrivePartition {
  table: 'gpt' | 'dos';
  partitionNumber: number;
  offsetBytes: number;
  sizeBytes: number;
}

interface SfdiskPartition { node: string; start: number; size: number; type: string }
interface SfdiskTable { label: string; lastlba?: number; sectorsize?: number; partitions?: SfdiskPartition[] }

function refuse(device: string, message: string, expected: string, extra: Record<string, unknown> = {}): never {
  throw new OspError('CONFIG_DRIVE_PARTITION_REFUSED', `device: ${device}: ${message}`, { field: 'device', value: device, expected, ...extra });
}

async function tool(file: string, args: string[], stdin = ''): Promise<string> {
  const out = await runProcess(file, { args, env: process.env, stdin, timeoutMs: TOOL_TIMEOUT_MS, captureFullStdout: true });
  if (out.exitCode !== 0) {
    const why = out.spawnError ?? (out.timedOut ? `timed out after ${TOOL_TIMEOUT_MS} ms` : out.stderrTail.trim() || `exit ${out.exitCode}`);
    throw Object.assign(new Error(`${file} ${args.join(' ')}: ${why}`), { stderr: out.stderrTail });
  }
  return out.stdout ?? '';
}

async function readTable(device: string): Promise<SfdiskTable> {
  let text: string;
  try {
    text = await tool('sfdisk', ['--json', device]);
  } catch (e) {
    if (/does not contain a recognized partition table/.test(String((e as { stderr?: string }).stderr ?? (e as Error).message))) {
      refuse(device, 'no partition table (a whole-disk filesystem image?); the config drive partition needs a GPT or MBR disk', 'a disk with a GPT or MBR partition table');
    }
    throw new OspError('INTERNAL', `config drive: reading the partition table of ${device} failed: ${(e as Error).message}`);
  }
  return (JSON.parse(text) as { partitiontable: SfdiskTable }).partitiontable;
}

/** sfdisk names partitions by device node (sda2, nvme0n1p2, disk.img2); the number is the trailing digits. */
function partitionNumber(p: SfdiskPartition): number {
  return Number(/(\d+)$/.exec(p.node)?.[1] ?? NaN);
}

async function diskSizeBytes(device: string): Promise<number> {
  const st = await stat(device);
  return st.isBlockDevice() ? blockDeviceSizeBytes(device) : st.size;
}

export async function writeConfigDrive(o: WriteConfigDriveOptions): Promise<ConfigDrivePartition> {
  const { device } = o;
  if (o.driveBytes.length === 0) throw new OspError('CONFIG_DRIVE_INVALID', 'drive_bytes: empty: expected the config drive image', { field: 'drive_bytes', value: 0, expected: 'the config drive image' });
  let table = await readTable(device);
  if (table.label === 'gpt') {
    // An image smaller than the disk leaves its backup GPT in the middle of the
    // disk and its last usable sector short of the end; move both to the end first.
    await tool('sgdisk', ['-e', device]).catch((e: Error) => {
      throw new OspError('INTERNAL', `config drive: moving the backup GPT of ${device} to the disk's end failed: ${e.message}`);
    });
    table = await readTable(device);
  } else if (table.label !== 'dos') {
    refuse(device, `partition table type "${table.label}" is not supported`, 'a GPT or MBR partition table');
  }
  const gpt = table.label === 'gpt';
  const parts = table.partitions ?? [];
  const sector = table.sectorsize ?? 512;

  if (!gpt) {
    const primaries = parts.filter((p) => partitionNumber(p) <= MBR_PRIMARY_SLOTS);
    if (primaries.length >= MBR_PRIMARY_SLOTS) {
      refuse(device, `MBR has all four primary partitions in use (${primaries.map((p) => p.node).join(', ')}); the config drive needs a free primary slot (use a GPT image)`,
        'an MBR disk with a free primary partition slot', { partitions: primaries.map((p) => p.node) });
    }
  }

  const sizeBytes = await diskSizeBytes(device);
  const lastUsable = gpt ? table.lastlba! : Math.floor(sizeBytes / sector) - 1;
  const alignSectors = MIB / sector;
  const partSectors = Math.ceil(o.driveBytes.length / MIB) * alignSectors;
  const start = Math.floor((lastUsable + 1 - partSectors) / alignSectors) * alignSectors;
  const usedEnd = Math.max(Math.ceil(o.imageBytes / sector), ...parts.map((p) => p.start + p.size));
  if (start < usedEnd) {
    refuse(device, `no room for a ${partSectors * sector}-byte config drive partition at the disk's end: the disk holds ${sizeBytes} bytes, the image and its partitions use the first ${usedEnd * sector}`,
      `${partSectors * sector} free bytes after the image`, { diskSizeBytes: sizeBytes, usedBytes: usedEnd * sector });
  }

  if (!gpt && start + partSectors > 0xffffffff) {
    refuse(device, `MBR addresses only the first ${0xffffffff * sector} bytes; the disk's end lies beyond`, 'a GPT disk for disks this large');
  }

  const line = `start=${start}, size=${partSectors}, type=${gpt ? GPT_TYPE : MBR_TYPE}${gpt ? ', name="config-2"' : ''}\n`;
  await tool('sfdisk', ['--append', '--no-reread', '--no-tell-kernel', '-q', device], line).catch((e: Error) => {
    throw new OspError('INTERNAL', `config drive: adding the partition to ${device} failed: ${e.message}`);
  });
  const added = ((await readTable(device)).partitions ?? []).find((p) => p.start === start);
  if (!added) throw new OspError('INTERNAL', `config drive: sfdisk reported success but ${device} has no partition at sector ${start}`);

  // Through the whole disk, not the partition node: udev may not have created it yet.
  // The partition's tail is zeroed so no older signature beside the drive confuses blkid.
  const offsetBytes = start * sector;
  const partBytes = partSectors * sector;
  const fh = await open(device, 'r+');
  try {
    await fh.write(o.driveBytes, 0, o.driveBytes.length, offsetBytes);
    const tail = partBytes - o.driveBytes.length;
    if (tail > 0) await fh.write(Buffer.alloc(tail), 0, tail, offsetBytes + o.driveBytes.length);
    await fh.sync();
  } finally {
    await fh.close();
  }
  if ((await stat(device)).isBlockDevice()) {
    // Best effort: the next boot reads the table anyway; this only helps tools run now.
    await tool('blockdev', ['--rereadpt', device]).catch(() => tool('partx', ['-u', device]).catch(() => undefined));
  }
  return { table: gpt ? 'gpt' : 'dos', partitionNumber: partitionNumber(added), offsetBytes, sizeBytes: partBytes };
}
