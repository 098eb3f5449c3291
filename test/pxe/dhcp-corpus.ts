/** Malformed DHCP packets, each built from a valid DISCOVER and broken in one way. */
import { MAGIC_COOKIE } from '../../server/pxe/dhcp/packet.js';

export interface CorpusEntry {
  name: string;
  bytes: Buffer;
}

function header(mac: string): Buffer {
  const b = Buffer.alloc(240);
  b[0] = 1; b[1] = 1; b[2] = 6;
  b.writeUInt32BE(0x1234abcd, 4);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(b, 28);
  b.writeUInt32BE(MAGIC_COOKIE, 236);
  return b;
}

export function corpus(mac: string): CorpusEntry[] {
  const h = header(mac);
  const discover = [53, 1, 1];
  const withOpts = (opts: number[]) => Buffer.concat([h, Buffer.from(opts)]);
  return [
    { name: 'empty', bytes: Buffer.alloc(0) },
    { name: 'truncated header', bytes: h.subarray(0, 100) },
    { name: 'header without cookie', bytes: h.subarray(0, 236) },
    { name: 'bad cookie', bytes: Buffer.concat([h.subarray(0, 236), Buffer.from([1, 2, 3, 4, 53, 1, 1, 255])]) },
    { name: 'option 255 missing', bytes: withOpts(discover) },
    { name: 'option without length', bytes: withOpts([...discover, 12]) },
    { name: 'length overrun', bytes: withOpts([...discover, 12, 200, 65, 66, 255]) },
    { name: 'length overrun at end', bytes: withOpts([53, 5, 1]) },
    { name: 'hlen over 16', bytes: (() => { const b = withOpts([...discover, 255]); b[2] = 200; return b; })() },
    { name: 'bad overload value', bytes: withOpts([...discover, 52, 1, 9, 255]) },
    { name: 'overload into file with overrun', bytes: (() => { const b = withOpts([...discover, 52, 1, 1, 255]); b[108] = 12; b[109] = 250; return b; })() },
    { name: 'huge packet', bytes: Buffer.concat([withOpts(discover), Buffer.alloc(20_000, 0), Buffer.from([255])]) },
    { name: 'message type with length 0', bytes: withOpts([53, 0, 255]) },
    { name: 'message type out of range', bytes: withOpts([53, 1, 42, 255]) },
  ];
}
