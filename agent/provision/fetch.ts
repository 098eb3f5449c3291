/**
 * Byte-range downloads of the image's raw file (RFC 9110 §14): one request
 * per range on a keep-alive connection, resumed from the first byte not yet
 * received when a connection drops. `If-Range` with the first answer's
 * strong ETag makes a resumed range come from the same file: a file
 * replaced on the server mid-deploy answers 200 and fails the deploy
 * instead of splicing two images.
 *
 * HTTP/1.1 (RFC 9112) is spoken here directly on the socket rather than
 * through node:http: its parser copies every body chunk into a freshly
 * allocated buffer, and at disk speed that copying and the page faults of
 * the allocations cost more CPU than everything else the writer does. Here
 * the socket reads into one fixed buffer (`onread`) and the sink copies out
 * of it. Only what a Range download needs is supported: a 206 framed by
 * Content-Length (or by the connection closing); anything else ends the
 * attempt.
 */
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { OspError } from '../../common/errors.js';

export interface RetryPolicy {
  /** Requests per range without progress before giving up (the first one included). */
  attempts: number;
  /** Wait before the n-th retry: backoffMs × 2^(n-1), capped at MAX_BACKOFF_MS. */
  backoffMs: number;
}

export interface FetchStats {
  requests: number;
  /** Requests that continued a range after a failure. */
  resumes: number;
  /** Body bytes received, whatever happened to them. */
  networkBytes: number;
}

export interface RangeFetcherOptions {
  url: string;
  token: string;
  /** Size of the raw file; a Content-Range naming another size is refused. */
  totalBytes: number;
  retry: RetryPolicy;
  /** A request that receives nothing for this long is dropped and retried. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Receives the bytes in order. The chunk is valid only until the sink
 * returns or, when it returns a promise, until that settles (the socket is
 * paused meanwhile): it must be copied, not kept.
 */
export type Sink = (chunk: Buffer) => Promise<void> | undefined;

const MAX_BACKOFF_MS = 10_000;
/** A failed attempt that delivered at least this much resets the attempt count: retries stay bounded per MiB of progress. */
const PROGRESS_RESET_BYTES = 1024 * 1024;
/** Refusals retrying cannot fix. */
const PERMANENT = new Set([400, 401, 403, 404, 405, 410, 416]);
const READ_BUFFER_BYTES = 256 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

class Permanent extends Error {}
/** The sink (the disk) failed: never retried, rethrown as it is. */
class SinkFailure extends Error {
  constructor(readonly inner: unknown) {
    super('sink failed');
  }
}
/** A kept-alive connection the server had closed before answering: retried at once on a new one, not counted as a failure. */
class Stale extends Error {}

interface Head {
  status: number;
  headers: Map<string, string>;
  keepAlive: boolean;
}

function parseHead(text: string): Head {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]);
  if (!m) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0].slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  const connection = (headers.get('connection') ?? '').toLowerCase();
  const keepAlive = m[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  return { status: Number(m[2]), headers, keepAlive };
}

/**
 * One connection; its reads land in a fixed buffer handed to whoever
 * currently listens. Data while nobody listens, an error or the close end
 * its use.
 */
class Connection {
  private readonly socket: net.Socket;
  private listener: { data(view: Buffer): boolean; end(err: Error | null): void } | null = null;
  ended = false;
  reused = false;

  constructor(url: URL, idleTimeoutMs: number) {
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (url.protocol === 'https:') {
      // TLS hands out decrypted chunks of its own; only plain TCP reads into the fixed buffer.
      const s = tls.connect({ host, port, servername: net.isIP(host) ? undefined : host });
      s.on('data', (chunk: Buffer) => { if (!this.data(chunk)) s.pause(); });
      this.socket = s;
    } else {
      const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      this.socket = net.connect({ host, port, onread: { buffer, callback: (n) => this.data(buffer.subarray(0, n)) } });
    }
    this.socket.setNoDelay(true);
    this.socket.setTimeout(idleTimeoutMs, () => this.socket.destroy(new Error(`no data for ${idleTimeoutMs} ms`)));
    this.socket.on('error', (e) => this.finish(e));
    this.socket.on('end', () => this.finish(null));
    this.socket.on('close', () => this.finish(null));
  }

  private data(view: Buffer): boolean {
    if (this.listener) return this.listener.data(view);
    this.socket.destroy();
    return false;
  }

  private finish(err: Error | null): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    const l = this.listener;
    this.listener = null;
    l?.end(err);
  }

  send(text: string, listener: NonNullable<Connection['listener']>): void {
    this.listener = listener;
    // Paused when the previous answer ended while the sink was busy.
    this.socket.resume();
    this.socket.write(text, 'latin1');
  }

  release(): void {
    this.listener = null;
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(err?: Error): void {
    this.socket.destroy(err);
    this.finish(err ?? null);
  }
}

export class RangeFetcher {
  readonly stats: FetchStats = { requests: 0, resumes: 0, networkBytes: 0 };
  private etag: string | null = null;
  private readonly url: URL;
  private conn: Connection | null = null;

  constructor(private readonly o: RangeFetcherOptions) {
    const u = new URL(o.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new OspError('IMAGE_FETCH_FAILED', `url: "${o.url}": expected an http:// or https:// URL`, { field: 'url', value: o.url, expected: 'an http:// or https:// URL' });
    }
    this.url = u;
  }

  close(): void {
    this.conn?.destroy();
    this.conn = null;
  }

  private fail(message: string, extra: Record<string, unknown> = {}): OspError {
    return new OspError('IMAGE_FETCH_FAILED', `image fetch failed: ${message} (url ${this.o.url})`, { field: 'url', value: this.o.url, ...extra });
  }

  /**
   * Delivers bytes [start, start+length) in order to `sink`; while a
   * promise it returned is pending, the socket is paused so the disk sets
   * the pace.
   */
  async fetch(start: number, length: number, sink: Sink): Promise<void> {
    const end = start + length;
    let pos = start;
    let failures = 0;
    let lastError = '';
    while (pos < end) {
      this.o.signal?.throwIfAborted();
      if (failures > 0) {
        if (failures >= this.o.retry.attempts) {
          throw this.fail(`bytes ${pos}-${end - 1} still missing after ${failures} attempts; last: ${lastError}`, { attempts: failures });
        }
        this.stats.resumes++;
        await sleep(Math.min(MAX_BACKOFF_MS, this.o.retry.backoffMs * 2 ** (failures - 1)), undefined, { signal: this.o.signal });
      }
      const cursor = { pos };
      try {
        await this.attempt(cursor, end, sink);
      } catch (e) {
        if (e instanceof SinkFailure) throw e.inner;
        if (e instanceof Permanent) throw this.fail(e.message);
        if (this.o.signal?.aborted) throw this.o.signal.reason;
        if (!(e instanceof Stale)) {
          lastError = (e as Error).message;
          failures = cursor.pos - pos >= PROGRESS_RESET_BYTES ? 1 : failures + 1;
        }
      }
      pos = cursor.pos;
    }
  }

  private connection(): Connection {
    if (this.conn && !this.conn.ended) {
      this.conn.reused = true;
      return this.conn;
    }
    this.conn = new Connection(this.url, this.o.idleTimeoutMs);
    return this.conn;
  }

  /**
   * One request, advancing `cursor.pos` as bytes reach the sink. Settles
   * once, when the body is complete, the connection ends, or the sink fails.
   */
  private attempt(cursor: { pos: number }, end: number, sink: Sink): Promise<void> {
    const sentIfRange = this.etag !== null;
    const lines = [
      `GET ${this.url.pathname}${this.url.search} HTTP/1.1`, `Host: ${this.url.host}`,
      `Authorization: Bearer ${this.o.token}`, `Range: bytes=${cursor.pos}-${end - 1}`,
    ];
    if (this.etag) lines.push(`If-Range: ${this.etag}`);
    this.stats.requests++;
    const conn = this.connection();
    const reused = conn.reused;
    const signal = this.o.signal;
    return new Promise<void>((resolve, reject) => {
      let head: Buffer | null = Buffer.alloc(0);
      let last = -1;
      let framed = true;
      let settled = false;
      let inflight: Promise<void> | null = null;
      const onAbort = (): void => conn.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = (err: unknown): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err === null) resolve();
        else reject(err);
      };
      const bail = (err: Error): false => {
        settle(err);
        conn.destroy();
        return false;
      };
      /** Body bytes of `view` from `off`; false pauses the socket until an async sink settles. */
      const body = (view: Buffer, off: number): boolean => {
        const take = Math.min(view.length - off, last - cursor.pos);
        this.stats.networkBytes += view.length - off;
        // More than the framing announced: the connection cannot carry another answer.
        if (take < view.length - off) framed = false;
        let pending: Promise<void> | undefined;
        try {
          pending = take > 0 ? sink(view.subarray(off, off + take)) : undefined;
        } catch (e) {
          return bail(new SinkFailure(e));
        }
        const advanced = (): void => {
          cursor.pos += take;
          if (cursor.pos === last) {
            if (framed && !conn.ended) conn.release();
            else conn.destroy();
            settle(null);
          }
        };
        if (!pending) {
          advanced();
          return true;
        }
        inflight = pending.then(() => {
          inflight = null;
          advanced();
          if (!settled) conn.resume();
        }, (e: unknown) => {
          inflight = null;
          bail(new SinkFailure(e));
        });
        return false;
      };
      const onHead = (h: Head, view: Buffer, off: number): boolean => {
        const pos = cursor.pos;
        if (h.status !== 206) {
          if (h.status === 200 && sentIfRange) return bail(new Permanent(`the image changed on the server during the download (HTTP 200 to If-Range ${this.etag}); not retried`));
          if (h.status === 200) return bail(new Permanent('the server ignored the Range header (HTTP 200); not retried'));
          if (PERMANENT.has(h.status)) return bail(new Permanent(`HTTP ${h.status}${h.status === 403 || h.status === 401 ? ' (deploy token refused)' : ''}; not retried`));
          return bail(new Error(`HTTP ${h.status}`));
        }
        const cr = h.headers.get('content-range') ?? '';
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
        if (!m || Number(m[1]) !== pos || Number(m[2]) < pos || Number(m[2]) >= end) {
          return bail(new Permanent(`Content-Range "${cr}" does not answer bytes=${pos}-${end - 1}`));
        }
        if (m[3] !== '*' && Number(m[3]) !== this.o.totalBytes) {
          return bail(new Permanent(`the raw image on the server holds ${m[3]} bytes; the deploy command says ${this.o.totalBytes} (virtualSizeBytes)`));
        }
        last = Number(m[2]) + 1;
        const te = h.headers.get('transfer-encoding');
        if (te !== undefined && te.toLowerCase() !== 'identity') return bail(new Permanent(`Transfer-Encoding "${te}" on a 206: expected a body framed by Content-Length`));
        const cl = h.headers.get('content-length');
        if (cl !== undefined && Number(cl) !== last - pos) return bail(new Permanent(`Content-Length ${cl} does not match Content-Range "${cr}"`));
        framed = cl !== undefined && h.keepAlive;
        const etag = h.headers.get('etag');
        if (!this.etag && etag && !etag.startsWith('W/')) this.etag = etag;
        return off < view.length ? body(view, off) : true;
      };
      conn.send(`${lines.join('\r\n')}\r\n\r\n`, {
        data: (view) => {
          if (settled) return false;
          if (head === null) return body(view, 0);
          const seen = head.length;
          head = Buffer.concat([head, view]);
          const i = head.indexOf(HEAD_END, Math.max(0, seen - 3));
          if (i < 0) {
            if (head.length > MAX_HEAD_BYTES) bail(new Error(`response head longer than ${MAX_HEAD_BYTES} bytes`));
            return !settled;
          }
          let h: Head;
          try {
            h = parseHead(head.subarray(0, i).toString('latin1'));
          } catch (e) {
            return bail(e as Error);
          }
          head = null;
          return onHead(h, view, i + HEAD_END.length - seen);
        },
        end: (err) => {
          const code = (err as NodeJS.ErrnoException | null)?.code;
          if (reused && head !== null && head.length === 0 && (!err || code === 'ECONNRESET' || code === 'EPIPE')) return settle(new Stale('kept-alive connection closed by the server'));
          // A sink still writing owns the cursor: the next attempt starts after it.
          const after = (): void => {
            if (last >= 0 && cursor.pos === last) return settle(null);
            if (err) return settle(err);
            settle(new Error(last < 0 ? 'connection closed before the response head' : `connection closed at byte ${cursor.pos} of a range ending at ${last - 1}`));
          };
          if (inflight) void inflight.then(after);
          else after();
        },
      });
    });
  }
}
