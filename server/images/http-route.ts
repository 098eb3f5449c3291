/**
 * `/images/<name>/raw` on ospd's HTTP listener: the sparse raw file, with
 * byte ranges (RFC 9110 §14), only for a request carrying a deploy token for
 * that image (`Authorization: Bearer …`). No token: 401 with a Bearer
 * challenge (RFC 6750 §3); a token that is wrong, expired or for another
 * image: 403. The ETag is the image's rawSha256, known since upload, so no
 * request ever hashes a multi-GiB file.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseRange } from '../pxe/http/static.js';
import type { DeployTokens } from './deploy-tokens.js';
import type { ImageStore } from './image-store.js';

export function imageUrlPath(name: string): string {
  return `/images/${name}/raw`;
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers }).end(body);
}

/** The handler for one image's URL (routes are exact paths, so each stored image gets its own). */
export function imageRoute(images: ImageStore, tokens: DeployTokens, name: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return text(res, 401, 'a deploy token is required (Authorization: Bearer)\n', { 'WWW-Authenticate': 'Bearer realm="ospd-images"' });
    if (!(await tokens.check(name, m[1]))) return text(res, 403, 'forbidden\n', { 'WWW-Authenticate': 'Bearer realm="ospd-images", error="invalid_token"' });
    let image;
    try {
      image = await images.get(name);
    } catch {
      return text(res, 404, `image ${name}: not found\n`);
    }
    const file = images.rawPath(name);
    const st = await stat(file);
    const etag = `"${image.rawSha256}"`;
    res.setHeader('ETag', etag);
    res.setHeader('X-Checksum-Sha256', image.rawSha256);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Type', 'application/octet-stream');
    let range: ReturnType<typeof parseRange> = null;
    const ifRange = req.headers['if-range'];
    if (req.headers.range && (!ifRange || ifRange === etag)) range = parseRange(req.headers.range, st.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'Content-Range': `bytes */${st.size}`, 'Content-Length': 0 }).end();
      return;
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : st.size - 1;
    const length = Math.max(0, end - start + 1);
    res.writeHead(range ? 206 : 200, { 'Content-Length': length, ...(range ? { 'Content-Range': `bytes ${start}-${end}/${st.size}` } : {}) });
    if (req.method === 'HEAD' || length === 0) return void res.end();
    await pipeline(createReadStream(file, { start, end, highWaterMark: 1 << 20 }), res);
  };
}
