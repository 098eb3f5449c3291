/**
 * One read transfer on its own UDP socket (RFC 1350 §4: the server's new
 * transfer ID). Sends a window of blocks (RFC 7440 §4; window 1 is plain RFC
 * 1350 lock-step), restarts after the last acknowledged block on timeout or
 * on an ACK inside the window, and gives up after `maxRetries` timeouts.
 * Block numbers are tracked internally as unbounded integers and wrap to 16
 * bits on the wire, so files over 65535 blocks roll over to 0 (the common
 * interpretation, as tftpd-hpa and curl do).
 */
import dgram from 'node:dgram';
import type { FileHandle } from 'node:fs/promises';
import { TftpErr, TftpOp, encodeData, encodeError, encodeOack } from './packet.js';

export interface BlockSource {
  sizeBytes: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

export function bufferSource(b: Buffer): BlockSource {
  return { sizeBytes: b.length, read: async (o, l) => b.subarray(o, o + l), close: async () => undefined };
}

/** Reads ahead in `readAheadBytes` chunks: one syscall per many blocks keeps lock-step clients fast. */
export function fileSource(fh: FileHandle, sizeBytes: number, readAheadBytes = 256 * 1024): BlockSource {
  let chunk = Buffer.alloc(0);
  let chunkOffset = 0;
  const fill = async (offset: number, length: number) => {
    const want = Math.max(0, Math.min(Math.max(length, readAheadBytes), sizeBytes - offset));
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, want - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    chunk = buf.subarray(0, got);
    chunkOffset = offset;
  };
  return {
    sizeBytes,
    read: async (offset, length) => {
      if (offset < chunkOffset || offset + Math.min(length, sizeBytes - offset) > chunkOffset + chunk.length) await fill(offset, length);
      return chunk.subarray(offset - chunkOffset, offset - chunkOffset + length);
    },
    close: () => fh.close(),
  };
}

export interface SessionParams {
  blksizeBytes: number;
  windowSize: number;
  timeoutMs: number;
  maxRetries: number;
  /** Options to acknowledge with OACK (RFC 2347 §3); empty → start with DATA 1. */
  oack: Map<string, string>;
}

export type SessionEnd = 'completed' | 'timed-out' | 'client-error' | 'io-error' | 'stopped';

export interface SessionStats {
  bytesSent: number;
  retransmits: number;
}

export class TftpSession {
  private lastAcked = 0;
  private nextToSend = 1;
  private readonly lastBlock: number;
  private retries = 0;
  private timer: NodeJS.Timeout | null = null;
  private sending = false;
  private ended = false;
  readonly stats: SessionStats = { bytesSent: 0, retransmits: 0 };

  constructor(
    private readonly socket: dgram.Socket,
    private readonly peer: { address: string; port: number },
    private readonly source: BlockSource,
    private readonly p: SessionParams,
    private readonly onEnd: (how: SessionEnd, s: TftpSession) => void,
  ) {
    // A file that is an exact multiple of blksize ends with an empty block (RFC 1350 §6).
    this.lastBlock = Math.floor(source.sizeBytes / p.blksizeBytes) + 1;
  }

  start(): void {
    this.socket.on('message', (msg, rinfo) => this.onPacket(msg, rinfo));
    if (this.p.oack.size > 0) {
      // After OACK the client acknowledges block 0 (RFC 2347 §4).
      // Block 0 stands for the OACK: outstanding until the client's ACK 0.
      this.nextToSend = 1;
      this.lastAcked = -1;
      this.sendRaw(encodeOack(this.p.oack));
      this.armTimer();
    } else {
      void this.pump();
    }
  }

  stop(): void {
    this.end('stopped');
  }

  private sendRaw(b: Buffer): void {
    this.socket.send(b, this.peer.port, this.peer.address);
  }

  private armTimer(): void {
    // refresh() re-arms the same timer: cheaper than a new one per block.
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(() => this.onTimeout(), this.p.timeoutMs);
  }

  private onTimeout(): void {
    if (this.ended) return;
    if (++this.retries > this.p.maxRetries) return this.end('timed-out');
    this.stats.retransmits++;
    if (this.lastAcked < 0) {
      this.sendRaw(encodeOack(this.p.oack));
      this.armTimer();
      return;
    }
    this.nextToSend = this.lastAcked + 1;
    void this.pump();
  }

  private onPacket(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.ended) return;
    if (rinfo.address !== this.peer.address || rinfo.port !== this.peer.port) {
      // RFC 1350 §4: a packet from a foreign TID gets an error and does not disturb the transfer.
      this.socket.send(encodeError(TftpErr.UNKNOWN_TID, 'unknown transfer ID'), rinfo.port, rinfo.address);
      return;
    }
    if (msg.length < 4) return;
    const op = msg.readUInt16BE(0);
    if (op === TftpOp.ERROR) return this.end('client-error');
    if (op !== TftpOp.ACK) return;
    const wire = msg.readUInt16BE(2);
    // Map the 16-bit number onto the outstanding range (lastAcked, nextToSend-1].
    const highest = this.nextToSend - 1;
    let acked = -1;
    for (let n = highest; n > this.lastAcked; n--) {
      if ((n & 0xffff) === wire) { acked = n; break; }
    }
    // Duplicate or stale ACK: ignoring it avoids the Sorcerer's Apprentice bug (RFC 1123 §4.2.3.1).
    if (acked < 0) return;
    this.lastAcked = acked;
    this.retries = 0;
    if (acked >= this.lastBlock) return this.end('completed');
    // RFC 7440 §4: an ACK short of the window end means loss; resend from the
    // block after it. While still sending, the ACK only slides the window.
    if (!this.sending) this.nextToSend = acked + 1;
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      while (!this.ended) {
        const windowEnd = Math.min(this.lastBlock, this.lastAcked + this.p.windowSize);
        if (this.nextToSend > windowEnd) break;
        const n = this.nextToSend++;
        const data = await this.source.read((n - 1) * this.p.blksizeBytes, this.p.blksizeBytes);
        if (this.ended) break;
        this.sendRaw(encodeData(n, data));
        this.stats.bytesSent += data.length;
      }
      this.armTimer();
    } catch {
      this.end('io-error');
    } finally {
      this.sending = false;
    }
  }

  private end(how: SessionEnd): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    void this.source.close().catch(() => undefined);
    const farewell = how === 'timed-out' ? 'timed out waiting for ACK' : how === 'io-error' ? 'read error' : null;
    // Close only after the farewell ERROR has left: closing first would drop it.
    if (farewell) this.socket.send(encodeError(TftpErr.UNDEFINED, farewell), this.peer.port, this.peer.address, () => this.socket.close());
    else this.socket.close();
    this.onEnd(how, this);
  }
}
