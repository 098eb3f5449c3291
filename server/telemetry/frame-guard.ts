import type { Readable } from 'node:stream';

/**
 * Refuses an MQTT packet by its declared size before any of its body is
 * buffered. mqtt-packet (under aedes) collects a whole packet before parsing
 * it, with no upper bound, and it does so for CONNECT too: without this, one
 * unauthenticated client declaring a 256 MB packet could make ospd buffer
 * 256 MB until the connect timeout.
 *
 * Framing, MQTT 3.1.1 §2.2 and MQTT 5 §2.1: one fixed-header byte, then the
 * Remaining Length as a variable byte integer (§2.2.3 / §1.5.5: seven bits a
 * byte, continuation in the high bit, at most four bytes), then that many
 * bytes of variable header and payload.
 */
export class MqttFrameGuard {
  private phase: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyLeft = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** Follows the framing across chunks; returns why the stream must close, or null. */
  feed(chunk: Buffer): string | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.phase === 'body') {
        const take = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= take;
        i += take;
        if (this.bodyLeft === 0) this.phase = 'type';
        continue;
      }
      if (this.phase === 'type') {
        i++;
        this.phase = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      const b = chunk[i++];
      this.lengthBytes++;
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (b & 0x80) {
        // §1.5.5: a fifth length byte makes the packet malformed.
        if (this.lengthBytes === 4) return 'malformed Remaining Length: more than 4 bytes';
        continue;
      }
      if (this.length > this.maxPacketBytes) return `packet declares ${this.length} bytes; at most ${this.maxPacketBytes} are accepted`;
      this.bodyLeft = this.length;
      this.phase = this.length === 0 ? 'type' : 'body';
    }
    return null;
  }
}

/**
 * Puts a guard in front of aedes on one connection. aedes takes bytes with
 * `read()` on 'readable' (paused mode), so the guard wraps this stream's
 * `read` rather than adding a 'data' listener, which would switch the stream
 * to flowing mode and take the bytes away from aedes. Writes, backpressure and
 * `writableLength` (the slow-consumer check) stay the socket's own.
 */
export function guardMqttStream(stream: Readable, maxPacketBytes: number, onRefused: (reason: string) => void): void {
  const guard = new MqttFrameGuard(maxPacketBytes);
  const read = stream.read.bind(stream);
  let refused = false;
  stream.read = (size?: number) => {
    if (refused) return null;
    const chunk: unknown = read(size);
    if (Buffer.isBuffer(chunk)) {
      const reason = guard.feed(chunk);
      if (reason) {
        refused = true;
        onRefused(reason);
        stream.destroy();
        return null;
      }
    }
    return chunk;
  };
}
