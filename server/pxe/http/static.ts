/**
 * Static artifacts (kernel, ramdisk, images) for agents and iPXE: RFC 9110
 * byte ranges (§14), validators (ETag §8.8.3, If-None-Match §13.1.2,
 * If-Range §13.1.5), and the file's sha256 in `X-Checksum-Sha256` so the
 * agent can verify what it writes to disk. Hashes are cached per
 * (path, size, mtime) and computed once.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';

interface HashEntry {
  key: string;
  sha256: Promise<string>;
}

export interface ServeResult {
  status: number;
  bytesSent: number;
  ranged: boolean;
}

export class ArtifactHasher {
  private readonly cache = new Map<string, HashEntry>();

  sha256(path: string, sizeBytes: number, mtimeMs: number): Promise<string> {
    const key = `${sizeBytes}:${mtimeMs}`;
    const hit = this.cache.get(path);
    if (hit && hit.key === key) return hit.sha256;
    const sha256 = new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(path).on('data', (c) => h.update(c)).on('error', reject).on('end', () => resolve(h.digest('hex')));
    });
    this.cache.set(path, { key, sha256 });
    sha256.catch(() => this.cache.delete(path));
    return sha256;
  }
}

/** Parses one `bytes=` range (RFC 9110 §14.1.2); null = ignore the header, 'unsatisfiable' = 416. */
export function parseRange(header: string, sizeBytes: number): { start: number; end: number } | null | 'unsatisfiable' {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Multiple ranges or other units: §14.2 lets a server ignore Range and send the whole representation.
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, sizeBytes - suffix), end: sizeBytes - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? sizeBytes - 1 : Math.min(Number(m[2]), sizeBytes - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= sizeBytes) return 'unsatisfiable';
  return { start, end };
}

export async function serveFile(req: IncomingMessage, res: ServerResponse, realPath: string, hasher: ArtifactHasher): Promise<ServeResult> {
  const st = await stat(realPath);
  if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
  const sha256 = await hasher.sha256(realPath, st.size, st.mtimeMs);
  const etag = `"${sha256}"`;
  res.setHeader('ETag', etag);
  res.setHeader('X-Checksum-Sha256', sha256);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Last-Modified', st.mtime.toUTCString());
  res.setHeader('Content-Type', 'application/octet-stream');
  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
    res.writeHead(304).end();
    return { status: 304, bytesSent: 0, ranged: false };
  }
  let range: ReturnType<typeof parseRange> = null;
  const ifRange = req.headers['if-range'];
  if (req.headers.range && (!ifRange || ifRange === etag)) range = parseRange(req.headers.range, st.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'Content-Range': `bytes */${st.size}`, 'Content-Length': 0 }).end();
    return { status: 416, bytesSent: 0, ranged: true };
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : st.size - 1;
  const length = Math.max(0, end - start + 1);
  const headers: Record<string, string | number> = { 'Content-Length': length };
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
  // The sha256 header describes the whole file, also on 206 (the agent checks the assembled file).
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return { status: range ? 206 : 200, bytesSent: 0, ranged: range !== null };
  }
  // 1 MiB reads as ospd's image route does: the default 64 KiB costs a read and a socket write per 64 KiB, and the server's CPU caps eight concurrent deploys.
  await pipeline(createReadStream(realPath, { start, end, highWaterMark: 1 << 20 }), res);
  return { status: range ? 206 : 200, bytesSent: length, ranged: range !== null };
}
