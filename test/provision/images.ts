/**
 * Test images and the HTTP servers the writer fetches them from.
 *
 * Images: a sparse raw file with random data written by `dd` at scattered
 * offsets (some unaligned), and a qcow2 made from it by `qemu-img convert`;
 * the reference is `qemu-img convert -O raw` of the image, and the extent
 * map is `qemu-img map --output=json` of that raw file — as ospd stores them.
 *
 * Servers: ospd's `/images/<name>/raw` route is being written beside this
 * component, so `startImageServer` puts ospd's own static-file code
 * (server/pxe/http/static.ts `serveFile`: Range, ETag, If-Range) behind a
 * small bearer-token check; `startBusybox` is a second, independent peer
 * (BusyBox httpd, which answers Range but has no bearer auth).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { extentsFromQemuMap, type Extent } from '../../common/extents.js';
import { ArtifactHasher, serveFile } from '../../server/pxe/http/static.js';

export const MIB = 1024 * 1024;

export interface TestImage {
  /** The file the writer is pointed at (a raw file: ospd serves the converted raw). */
  raw: string;
  virtualSizeBytes: number;
  extents: Extent[];
  rawSha256: string;
  /** sha256 of the data extents' bytes in order (what ospd sends as data_sha256), computed here independently of ospd. */
  dataSha256: string;
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
}

/** Random bytes written at each [offsetBytes, lengthBytes] into a sparse file of sizeBytes. */
export function sparseRaw(file: string, sizeBytes: number, writes: [number, number][]): void {
  run('truncate', ['-s', String(sizeBytes), file]);
  for (const [off, len] of writes) {
    // iflag=count_bytes, oflag=seek_bytes: offsets and lengths in bytes, not blocks.
    run('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${len}`, `seek=${off}`, 'iflag=count_bytes,fullblock', 'oflag=seek_bytes', 'conv=notrunc,fsync', 'status=none']);
  }
}

export async function sha256File(file: string, lengthBytes?: number): Promise<string> {
  const h = createHash('sha256');
  const opts = lengthBytes === undefined ? {} : { end: lengthBytes - 1 };
  for await (const c of createReadStream(file, opts)) h.update(c as Buffer);
  return h.digest('hex');
}

/** The data extents of `file` hashed in order, one positional read at a time (independent of ospd's single-pass code). */
export async function sha256OfData(file: string, extents: readonly Extent[]): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(MIB);
    for (const e of extents) {
      if (!e.data) continue;
      for (let off = 0; off < e.length;) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, e.length - off), e.start + off);
        if (bytesRead === 0) throw new Error(`${file}: short read at ${e.start + off}`);
        h.update(buf.subarray(0, bytesRead));
        off += bytesRead;
      }
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** What ospd does at upload: convert to sparse raw, map it, hash it over the virtual size. */
export async function prepare(image: string, dir: string): Promise<TestImage> {
  const raw = path.join(dir, `${path.basename(image)}.converted.raw`);
  run('qemu-img', ['convert', '-O', 'raw', image, raw]);
  const virtualSizeBytes = (JSON.parse(run('qemu-img', ['info', '--output=json', image])) as { 'virtual-size': number })['virtual-size'];
  const extents = extentsFromQemuMap(run('qemu-img', ['map', '--output=json', '-f', 'raw', raw]), virtualSizeBytes);
  return { raw, virtualSizeBytes, extents, rawSha256: await sha256File(raw), dataSha256: await sha256OfData(raw, extents) };
}

export interface ImageServer {
  url: string;
  token: string;
  /** Every request's Range header ('' when none) and status. */
  requests: { range: string; ifRange: string; status: number; dropped: boolean }[];
  close(): Promise<void>;
}

export interface ServerBehaviour {
  /** Destroy the connection after this many body bytes, on the first `dropTimes` responses longer than that (Infinity: always). */
  dropAfterBytes?: number;
  dropTimes?: number;
}

export async function startImageServer(file: string, behaviour: ServerBehaviour = {}): Promise<ImageServer> {
  const token = createHash('sha256').update(String(Math.random())).digest('hex');
  const hasher = new ArtifactHasher();
  const requests: ImageServer['requests'] = [];
  let drops = 0;
  const srv = http.createServer((req, res) => {
    const entry = { range: req.headers.range ?? '', ifRange: String(req.headers['if-range'] ?? ''), status: 0, dropped: false };
    requests.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
    res.on('close', () => { entry.status ||= res.statusCode; });
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(403, { 'Content-Type': 'text/plain' }).end('forbidden\n');
      return;
    }
    const limit = behaviour.dropAfterBytes;
    if (limit !== undefined) {
      let sent = 0;
      const write = res.write.bind(res) as (c: Buffer, ...rest: unknown[]) => boolean;
      res.write = ((chunk: Buffer, ...rest: unknown[]) => {
        if (sent + chunk.length > limit && drops < (behaviour.dropTimes ?? 1)) {
          drops++;
          entry.dropped = true;
          write(chunk.subarray(0, limit - sent));
          res.socket?.destroy();
          sent = limit;
          return false;
        }
        sent += chunk.length;
        return write(chunk, ...rest);
      }) as typeof res.write;
    }
    serveFile(req, res, file, hasher).catch(() => res.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/images/test/raw`, token, requests,
    close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

export interface Busybox {
  url: string;
  /** Connections accepted (BusyBox closes each after one answer). */
  connections: number;
  close(): Promise<void>;
}

/**
 * BusyBox httpd in inetd mode (`-i`): a listener on port 0 hands each
 * accepted connection to a fresh `busybox httpd -i` as its stdin/stdout, so
 * the whole HTTP exchange is BusyBox's and no port is guessed.
 */
export async function startBusybox(file: string): Promise<Busybox> {
  const children = new Set<ChildProcess>();
  const state = { connections: 0 };
  // pauseOnConnect: this process never reads the socket; after the spawn only BusyBox holds it.
  const srv = net.createServer({ pauseOnConnect: true }, (sock) => {
    state.connections++;
    const child = spawn('busybox', ['httpd', '-i', '-h', path.dirname(file)], { stdio: [sock, sock, 'ignore'] });
    children.add(child);
    child.once('spawn', () => sock.destroy());
    child.on('exit', () => children.delete(child));
    child.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${path.basename(file)}`,
    get connections() { return state.connections; },
    close: async () => {
      for (const c of children) c.kill();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}
