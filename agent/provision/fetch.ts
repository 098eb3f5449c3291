/**
 * Byte-range downloads of the image's raw file (RFC 9110 §14): one request
 * per range on a keep-alive connection, resumed from the first byte not yet
 * received when a connection drops. `If-Range` with the first answer's
 * strong ETag makes a resumed range come from the same file: a file
 * replaced on the server mid-deploy answers 200 and fails the deploy
 * instead of splicing two images.
 */
import http from 'node:http';
import https from 'node:https';
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

const MAX_BACKOFF_MS = 10_000;
/** A failed attempt that delivered at least this much resets the attempt count: retries stay bounded per MiB of progress. */
const PROGRESS_RESET_BYTES = 1024 * 1024;
/** Refusals retrying cannot fix. */
const PERMANENT = new Set([400, 401, 403, 404, 405, 410, 416]);

class Permanent extends Error {}
/** The sink (the disk) failed: never retried, rethrown as it is. */
class SinkFailure extends Error {
  constructor(readonly inner: unknown) {
    super('sink failed');
  }
}

export class RangeFetcher {
  readonly stats: FetchStats = { requests: 0, resumes: 0, networkBytes: 0 };
  private etag: string | null = null;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;

  constructor(private readonly o: RangeFetcherOptions) {
    const u = new URL(o.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new OspError('IMAGE_FETCH_FAILED', `url: "${o.url}": expected an http:// or https:// URL`, { field: 'url', value: o.url, expected: 'an http:// or https:// URL' });
    }
    this.mod = u.protocol === 'https:' ? https : http;
    this.agent = new this.mod.Agent({ keepAlive: true, maxSockets: 1 });
  }

  close(): void {
    this.agent.destroy();
  }

  private fail(message: string, extra: Record<string, unknown> = {}): OspError {
    return new OspError('IMAGE_FETCH_FAILED', `image fetch failed: ${message} (url ${this.o.url})`, { field: 'url', value: this.o.url, ...extra });
  }

  /**
   * Delivers bytes [start, start+length) in order to `sink`, awaiting it per
   * chunk so the socket is paused while the disk catches up.
   */
  async fetch(start: number, length: number, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
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
        lastError = (e as Error).message;
        failures = cursor.pos - pos >= PROGRESS_RESET_BYTES ? 1 : failures + 1;
      }
      pos = cursor.pos;
    }
  }

  /**
   * One request, advancing `cursor.pos` as bytes reach the sink. Once the
   * response has started, only the body settles the attempt: a request
   * error then arrives as a body error, so no second attempt can feed the
   * sink while this one still does.
   */
  private attempt(cursor: { pos: number }, end: number, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.o.token}`, Range: `bytes=${cursor.pos}-${end - 1}` };
    if (this.etag) headers['If-Range'] = this.etag;
    this.stats.requests++;
    return new Promise<void>((resolve, reject) => {
      let responded = false;
      const req = this.mod.get(this.o.url, { headers, agent: this.agent, signal: this.o.signal }, (res) => {
        responded = true;
        this.body(res, cursor, end, headers['If-Range'] !== undefined, sink).then(resolve, reject);
      });
      req.setTimeout(this.o.idleTimeoutMs, () => req.destroy(new Error(`no data for ${this.o.idleTimeoutMs} ms`)));
      req.on('error', (e) => { if (!responded) reject(e); });
    });
  }

  private async body(res: http.IncomingMessage, cursor: { pos: number }, end: number, sentIfRange: boolean, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
    const pos = cursor.pos;
    const status = res.statusCode ?? 0;
    if (status !== 206) {
      res.resume();
      if (status === 200 && sentIfRange) throw new Permanent(`the image changed on the server during the download (HTTP 200 to If-Range ${this.etag}); not retried`);
      if (status === 200) throw new Permanent('the server ignored the Range header (HTTP 200); not retried');
      if (PERMANENT.has(status)) throw new Permanent(`HTTP ${status}${status === 403 || status === 401 ? ' (deploy token refused)' : ''}; not retried`);
      throw new Error(`HTTP ${status}`);
    }
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
    if (!m || Number(m[1]) !== pos || Number(m[2]) < pos || Number(m[2]) >= end) {
      res.resume();
      throw new Permanent(`Content-Range "${res.headers['content-range'] ?? ''}" does not answer bytes=${pos}-${end - 1}`);
    }
    if (m[3] !== '*' && Number(m[3]) !== this.o.totalBytes) {
      res.resume();
      throw new Permanent(`the raw image on the server holds ${m[3]} bytes; the deploy command says ${this.o.totalBytes} (virtualSizeBytes)`);
    }
    const etag = res.headers.etag;
    if (!this.etag && etag && !etag.startsWith('W/')) this.etag = etag;
    const last = Number(m[2]) + 1;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      const take = Math.min(chunk.length, last - cursor.pos);
      this.stats.networkBytes += chunk.length;
      if (take > 0) await sink(take === chunk.length ? chunk : chunk.subarray(0, take)).catch((err: unknown) => { throw new SinkFailure(err); });
      cursor.pos += take;
    }
    if (cursor.pos < last) throw new Error(`connection closed at byte ${cursor.pos} of a range ending at ${last - 1}`);
  }
}
