import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface RamdiskBootParams {
  /** host:port of ospd's gRPC API. */
  server: string;
  /** Hex sha256 of the DER of the CA that must have issued ospd's certificate. */
  caSha256: string;
  debug: boolean;
}

/** Thrown when the kernel command line lacks or garbles what the ramdisk needs; names the parameter. */
export class BootParamsError extends Error {}

/**
 * Parses `osp.server=`, `osp.ca_sha256=` and `osp.debug` from the kernel
 * command line (space-separated, last occurrence wins like the kernel's own
 * parameters; quoting is not used by osp's boot scripts).
 */
export function parseBootParams(cmdline: string): RamdiskBootParams {
  const kv = new Map<string, string>();
  for (const word of cmdline.trim().split(/\s+/)) {
    const i = word.indexOf('=');
    kv.set(i < 0 ? word : word.slice(0, i), i < 0 ? '' : word.slice(i + 1));
  }
  const server = kv.get('osp.server') ?? '';
  if (!server) throw new BootParamsError('osp.server: missing from the kernel command line: expected osp.server=HOST:PORT');
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(server) || Number(server.split(':').pop()) > 65535) {
    throw new BootParamsError(`osp.server: ${JSON.stringify(server)}: expected HOST:PORT (IPv6 in brackets)`);
  }
  const caSha256 = (kv.get('osp.ca_sha256') ?? '').toLowerCase().replace(/:/g, '');
  if (!/^[0-9a-f]{64}$/.test(caSha256)) {
    throw new BootParamsError(`osp.ca_sha256: ${JSON.stringify(kv.get('osp.ca_sha256') ?? '')}: expected the 64-hex-digit sha256 of ospd's CA certificate`);
  }
  const debug = kv.has('osp.debug') && !['0', 'false', 'no'].includes(kv.get('osp.debug')!);
  return { server, caSha256, debug };
}

export async function readBootParams(root: string): Promise<RamdiskBootParams> {
  const file = path.join(root, 'proc/cmdline');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new BootParamsError(`${file}: cannot read the kernel command line: ${(e as Error).message}`);
  }
  return parseBootParams(text);
}
