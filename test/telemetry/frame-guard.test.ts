/** The MQTT frame guard on packets encoded by mqtt-packet (a library osp did not write), split at every byte. */
import { describe, expect, it } from 'vitest';
import { generate } from 'mqtt-packet';
import { MqttFrameGuard } from '../../server/telemetry/frame-guard.js';

const packets = [
  generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'guard', username: 'u', password: Buffer.from('p') }),
  generate({ cmd: 'pingreq' }),
  generate({ cmd: 'publish', topic: 'osp/nodes/a/metrics', payload: Buffer.alloc(127 - 21, 1), qos: 0, retain: false, dup: false }),
  generate({ cmd: 'publish', topic: 'osp/nodes/a/metrics', payload: Buffer.alloc(20_000, 2), qos: 1, messageId: 7, retain: false, dup: false }),
  generate({ cmd: 'subscribe', messageId: 8, subscriptions: [{ topic: 'osp/#', qos: 0 }] }),
  generate({ cmd: 'disconnect' }),
];
const stream = Buffer.concat(packets);
const largest = Math.max(...packets.map((p) => p.length));

describe('MQTT frame guard', () => {
  it('follows the framing of real packets however the bytes are split', () => {
    for (let cut = 1; cut < stream.length; cut += 97) {
      const g = new MqttFrameGuard(largest);
      expect(g.feed(stream.subarray(0, cut)), `cut at ${cut}`).toBeNull();
      expect(g.feed(stream.subarray(cut)), `cut at ${cut}`).toBeNull();
    }
    const oneByOne = new MqttFrameGuard(largest);
    for (const b of stream) expect(oneByOne.feed(Buffer.from([b]))).toBeNull();
  });

  it('refuses the first packet over the limit from its header alone', () => {
    const g = new MqttFrameGuard(20_000 + 64);
    expect(g.feed(Buffer.concat(packets.slice(0, 3)))).toBeNull();
    const big = generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(30_000), qos: 0, retain: false, dup: false });
    // Only the fixed header (1 type byte + 3 length bytes) is needed to decide.
    expect(g.feed(big.subarray(0, 4))).toMatch(/declares 30003 bytes; at most 20064/);
  });

  it('refuses a Remaining Length of more than four bytes (MQTT §1.5.5)', () => {
    expect(new MqttFrameGuard(1 << 30).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toMatch(/more than 4 bytes/);
    // The largest four-byte value is well formed, and over any sane limit.
    expect(new MqttFrameGuard(1 << 30).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))).toBeNull();
    expect(new MqttFrameGuard(1024).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))).toMatch(/declares 268435455 bytes/);
  });
});
