/**
 * Read-only TFTP service for PXE ROMs and clients without HTTP.
 * RFC 1350 (RRQ), RFC 2347 (option negotiation), RFC 2348 (blksize),
 * RFC 2349 (timeout, tsize), RFC 7440 (windowsize). Each transfer runs on its
 * own socket, so a slow client only slows itself.
 */
import dgram from 'node:dgram';
import { open, realpath } from 'node:fs/promises';
import type { Logger } from '../../../common/logging.js';
import { silentLogger } from '../../../common/logging.js';
import type { BootLog, Counters, PxeServiceStatus } from '../types.js';
import { TftpDecodeError, TftpErr, TftpOp, decodeRequest, encodeError, type TftpRequest } from './packet.js';
import { AccessViolation, checkName, resolveUnderRoot } from '../root-path.js';
import { TftpSession, bufferSource, fileSource, type BlockSource, type SessionEnd } from './session.js';

/** Content made on request (per-node files); null → fall through to the root directory. */
export type GeneratedContent = (name: string, client: { address: string }) => Promise<Buffer | null>;

export interface TftpConfig {
  listenHost: string;
  /** 69 by default; 0 picks an ephemeral port (see `address()`). */
  port: number;
  root: string;
  generated?: GeneratedContent;
  /** Retransmission timeout unless the client negotiates one (RFC 2349 §3). */
  timeoutMs?: number;
  /** Timeouts in a row before the transfer is abandoned. */
  maxRetries?: number;
  /** Upper bound for a negotiated windowsize (RFC 7440 allows 65535). */
  maxWindowSize?: number;
  /** Upper bound for a negotiated blksize (RFC 2348 allows 65464). */
  maxBlksizeBytes?: number;
  /** Optional: resolves a client address to a MAC for the boot log (e.g. from DHCP leases). */
  macForAddress?: (address: string) => string | null;
}

export class TftpServer {
  private socket: dgram.Socket | null = null;
  private realRoot = '';
  private readonly sessions = new Set<TftpSession>();
  private readonly counters: Counters = {};
  private readonly log: Logger;

  constructor(private readonly config: TftpConfig, private readonly bootLog: BootLog, logger?: Logger) {
    this.log = logger ?? silentLogger();
  }

  private count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }

  async start(): Promise<void> {
    this.realRoot = await realpath(this.config.root);
    this.socket = await new Promise<dgram.Socket>((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      s.once('error', reject);
      s.on('message', (msg, rinfo) => {
        this.onRequest(msg, rinfo).catch((e: unknown) => {
          this.count('handler_errors');
          this.log.error({ err: e }, 'tftp request failed');
        });
      });
      s.bind(this.config.port, this.config.listenHost, () => {
        s.off('error', reject);
        s.on('error', (e) => this.log.error({ err: e }, 'tftp socket error'));
        resolve(s);
      });
    });
    this.log.info({ listen: this.address(), root: this.realRoot }, 'tftp started');
  }

  address(): { address: string; port: number } {
    const a = this.socket!.address();
    return { address: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    for (const s of [...this.sessions]) s.stop();
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  activeSessions(): number {
    return this.sessions.size;
  }

  status(): PxeServiceStatus {
    return {
      // The bound port: the configured one may be 0.
      service: 'tftp', running: this.socket !== null, listen: `${this.config.listenHost}:${this.socket?.address().port ?? this.config.port}`,
      root: this.realRoot, activeSessions: this.sessions.size, counters: { ...this.counters },
    };
  }

  private record(address: string, event: string, detail: Record<string, unknown>): void {
    const mac = this.config.macForAddress?.(address);
    if (mac) this.bootLog.record({ mac, service: 'tftp', event, detail });
  }

  private async onRequest(msg: Buffer, rinfo: dgram.RemoteInfo): Promise<void> {
    const reply = (code: TftpErr, text: string) => this.socket?.send(encodeError(code, text), rinfo.port, rinfo.address);
    let req: TftpRequest;
    try {
      req = decodeRequest(msg);
    } catch (e) {
      if (!(e instanceof TftpDecodeError)) throw e;
      this.count('malformed');
      // Stray DATA/ACK to port 69 are not requests; answering them would invite loops.
      if (msg.length >= 2 && msg.readUInt16BE(0) <= TftpOp.WRQ) reply(TftpErr.ILLEGAL_OP, e.message);
      return;
    }
    if (req.op === TftpOp.WRQ) {
      this.count('wrq_refused');
      reply(TftpErr.ACCESS_VIOLATION, 'server is read-only');
      return;
    }
    this.count('rrq');
    // netascii is served byte-for-byte: boot files are binary and clients ask for octet.
    if (req.mode !== 'octet' && req.mode !== 'netascii') {
      reply(TftpErr.ILLEGAL_OP, `mode "${req.mode}" not supported (expected octet or netascii)`);
      return;
    }
    let source: BlockSource;
    try {
      source = await this.open(req.filename, rinfo.address);
    } catch (e) {
      if (e instanceof AccessViolation) {
        this.count('access_violations');
        this.record(rinfo.address, 'RRQ refused', { file: req.filename, reason: e.message });
        reply(TftpErr.ACCESS_VIOLATION, `access violation: ${e.message}`);
        return;
      }
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
        this.count('not_found');
        this.record(rinfo.address, 'RRQ not found', { file: req.filename });
        reply(TftpErr.NOT_FOUND, 'file not found');
        return;
      }
      throw e;
    }
    this.startSession(req, source, rinfo);
  }

  private async open(name: string, address: string): Promise<BlockSource> {
    const generated = this.config.generated ? await this.config.generated(checkName(name), { address }) : null;
    if (generated) return bufferSource(generated);
    const real = await resolveUnderRoot(this.realRoot, name);
    const fh = await open(real, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
      return fileSource(fh, st.size);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** RFC 2347 §3: accept what we support within bounds, silently omit the rest. */
  private negotiate(req: TftpRequest, sizeBytes: number): { blksize: number; window: number; timeoutMs: number; oack: Map<string, string> } {
    const oack = new Map<string, string>();
    let blksize = 512;
    let window = 1;
    let timeoutMs = this.config.timeoutMs ?? 1000;
    const int = (v: string) => (/^\d{1,6}$/.test(v) ? Number(v) : NaN);
    const b = int(req.options.get('blksize') ?? '');
    // RFC 2348 §2: 8..65464; a larger request is answered with our maximum.
    if (b >= 8) { blksize = Math.min(b, this.config.maxBlksizeBytes ?? 65464); oack.set('blksize', String(blksize)); }
    const t = int(req.options.get('timeout') ?? '');
    // RFC 2349 §2: 1..255 seconds, accepted as is or not at all.
    if (t >= 1 && t <= 255) { timeoutMs = t * 1000; oack.set('timeout', String(t)); }
    // RFC 2349 §4: the client sends tsize 0 in an RRQ; we answer with the size.
    if (req.options.has('tsize')) oack.set('tsize', String(sizeBytes));
    const w = int(req.options.get('windowsize') ?? '');
    // RFC 7440 §3: 1..65535.
    if (w >= 1 && w <= 65535) { window = Math.min(w, this.config.maxWindowSize ?? 64); oack.set('windowsize', String(window)); }
    return { blksize, window, timeoutMs, oack };
  }

  private startSession(req: TftpRequest, source: BlockSource, rinfo: dgram.RemoteInfo): void {
    const n = this.negotiate(req, source.sizeBytes);
    const sock = dgram.createSocket('udp4');
    sock.on('error', (e) => this.log.warn({ err: e }, 'tftp transfer socket error'));
    const started = Date.now();
    sock.bind(0, this.config.listenHost === '0.0.0.0' ? undefined : this.config.listenHost, () => {
      const session = new TftpSession(sock, { address: rinfo.address, port: rinfo.port }, source,
        { blksizeBytes: n.blksize, windowSize: n.window, timeoutMs: n.timeoutMs, maxRetries: this.config.maxRetries ?? 5, oack: n.oack },
        (how: SessionEnd, s) => {
          this.sessions.delete(s);
          this.count(`transfers_${how.replace('-', '_')}`);
          this.count('bytes_sent', s.stats.bytesSent);
          this.count('retransmits', s.stats.retransmits);
          this.record(rinfo.address, `RRQ ${how}`, { file: req.filename, sizeBytes: source.sizeBytes, blksize: n.blksize, windowsize: n.window, durationMs: Date.now() - started });
        });
      this.sessions.add(session);
      session.start();
    });
  }
}
