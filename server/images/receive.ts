/**
 * Receiving an upload into a temporary file: both digests are computed while
 * writing (one pass, no re-read), and the real format is read from the first
 * bytes so a mislabelled file is refused before the rest of it is accepted.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { OspError } from '../../common/errors.js';
import type { DiskFormat } from './qemu.js';

/** qcow2 header magic, "QFI\xfb" (qemu docs/interop/qcow2.txt). */
export const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

export interface Received {
  sizeBytes: number;
  sha256: string;
  sha512: string;
  /** From the header: qcow2 when it starts with the magic, raw otherwise (qemu-img confirms later). */
  detected: DiskFormat;
}

export interface ReceiveOptions {
  /** What the client claims; null lets the header decide. */
  claimed: DiskFormat | null;
  /** Declared in the upload header; more or fewer bytes is a refusal. */
  sizeBytes: number;
  /** A client that sends nothing for this long is cut off, so a stalled upload cannot hold its temp file forever. */
  idleTimeoutMs: number;
}

export function detectFormat(head: Buffer): DiskFormat {
  return head.length >= 4 && head.subarray(0, 4).equals(QCOW2_MAGIC) ? 'qcow2' : 'raw';
}

function mismatch(claimed: DiskFormat, detected: DiskFormat): OspError {
  const why = detected === 'qcow2'
    ? 'the file starts with the qcow2 magic "QFI\\xfb"'
    : 'the file does not start with the qcow2 magic "QFI\\xfb"';
  return new OspError('IMAGE_INVALID', `format: "${claimed}" claimed, but ${why}: it is ${detected}`, {
    field: 'format', value: claimed, expected: detected,
  });
}

/** Writes `source` (Buffers) into `file`; throws on a format mismatch, a size mismatch, a stall or a source error. */
export async function receiveInto(source: Readable, file: string, o: ReceiveOptions): Promise<Received> {
  const sha256 = createHash('sha256');
  const sha512 = createHash('sha512');
  const out = await open(file, 'wx', 0o600);
  let received = 0;
  let head = Buffer.alloc(0);
  let detected: DiskFormat | null = null;
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => source.destroy(new OspError('DEADLINE_EXCEEDED', `upload stalled: nothing received for ${o.idleTimeoutMs} ms`)), o.idleTimeoutMs);
  };
  const decide = () => {
    detected = detectFormat(head);
    if (o.claimed && o.claimed !== detected) throw mismatch(o.claimed, detected);
  };
  try {
    arm();
    for await (const chunk of source as AsyncIterable<Buffer>) {
      arm();
      received += chunk.length;
      if (received > o.sizeBytes) {
        throw new OspError('IMAGE_INVALID', `chunk: more bytes received than size_bytes ${o.sizeBytes} declared`, { field: 'size_bytes', value: o.sizeBytes, expected: 'the exact size of the file' });
      }
      if (detected === null) {
        head = Buffer.concat([head, chunk.subarray(0, 4)]).subarray(0, 4);
        if (head.length >= 4) decide();
      }
      sha256.update(chunk);
      sha512.update(chunk);
      await out.write(chunk);
    }
    if (received < o.sizeBytes) {
      throw new OspError('IMAGE_INVALID', `chunk: upload ended after ${received} of the ${o.sizeBytes} bytes declared`, { field: 'size_bytes', value: o.sizeBytes, expected: `${received} (what was sent)` });
    }
    if (detected === null) decide();
    await out.sync();
  } finally {
    clearTimeout(idle);
    await out.close();
  }
  return { sizeBytes: received, sha256: sha256.digest('hex'), sha512: sha512.digest('hex'), detected: detected! };
}
