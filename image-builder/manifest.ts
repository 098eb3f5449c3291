import { createHash } from 'node:crypto';
import { createReadStream, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface OutputFile {
  path: string;
  sizeBytes: number;
  sha256: string;
}

export interface BuildManifest {
  schema: 'osp-image/manifest/v1';
  imageName: string;
  imageType: string;
  elements: string[];
  packages: string[];
  agentVersion: string;
  kernelVersion?: string;
  outputs: OutputFile[];
  buildStartedAt: string;
  buildDurationMs: number;
  arguments: string[];
  [extra: string]: unknown;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Writes `FILE.sha256` in sha256sum's format (so `sha256sum -c` verifies it) and describes the file. */
export async function checksumOutput(path: string): Promise<OutputFile> {
  const sha256 = await sha256File(path);
  writeFileSync(`${path}.sha256`, `${sha256}  ${basename(path)}\n`);
  return { path, sizeBytes: statSync(path).size, sha256 };
}
