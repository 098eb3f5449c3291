/**
 * DHCPv4 message codec (RFC 2131 §2 fixed header, RFC 2132 options, RFC 3396
 * long-option concatenation, RFC 2131 §4.1 option overload). Every length is
 * checked before it is read: a bad packet raises DhcpDecodeError with a short
 * machine-readable reason so the server can count and drop it.
 */
import { formatMac } from '../../../common/mac.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** RFC 2131 §3: 99.130.83.99 */
export const MAGIC_COOKIE = 0x63825363;
const FIXED_HEADER_BYTES = 236;
const OPTIONS_OFFSET = FIXED_HEADER_BYTES + 4;
/** RFC 1542 §2.1: a BOOTP message is at least 300 octets; relays and old ROMs drop shorter ones. */
const MIN_REPLY_BYTES = 300;
/** Larger than any DHCP message we accept (RFC 2131 §2: 576 by default, more only via option 57 on jumbo links). */
export const MAX_PACKET_BYTES = 4096;

export enum MessageType {
  DISCOVER = 1, OFFER = 2, REQUEST = 3, DECLINE = 4, ACK = 5, NAK = 6, RELEASE = 7, INFORM = 8,
}

export const MESSAGE_TYPE_NAMES: Record<number, string> = {
  1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM',
};

/** RFC 2132 / RFC 4578 option codes used by this server. */
export const Opt = {
  PAD: 0, SUBNET_MASK: 1, ROUTER: 3, DNS: 6, HOSTNAME: 12, DOMAIN: 15, BROADCAST: 28,
  VENDOR_SPECIFIC: 43, REQUESTED_IP: 50, LEASE_TIME: 51, OVERLOAD: 52, MESSAGE_TYPE: 53,
  SERVER_ID: 54, PARAM_REQUEST: 55, MESSAGE: 56, MAX_MESSAGE_SIZE: 57, RENEWAL_T1: 58,
  REBINDING_T2: 59, VENDOR_CLASS: 60, CLIENT_ID: 61, TFTP_SERVER_NAME: 66, BOOTFILE_NAME: 67,
  USER_CLASS: 77, CLIENT_ARCH: 93, CLIENT_NDI: 94, UUID_GUID: 97, IPXE_ENCAP: 175, END: 255,
} as const;

export class DhcpDecodeError extends Error {
  constructor(readonly reason: string, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'DhcpDecodeError';
  }
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** Lower-case colon form of the first `hlen` octets of chaddr. */
  chaddr: string;
  sname: string;
  file: string;
  /** Option code → value; repeated options already concatenated (RFC 3396 §5). */
  options: Map<number, Buffer>;
}

export const BROADCAST_FLAG = 0x8000;

function ipAt(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.subarray(0, nul < 0 ? buf.length : nul).toString('latin1');
}

/**
 * Parses one options area into `into`. `requireEnd` is true for the main
 * options field: RFC 2132 §3.2 says the End option terminates it, and a
 * missing End means the sender truncated the packet.
 */
function parseOptions(area: Buffer, into: Map<number, Buffer>, where: string, requireEnd: boolean): void {
  let i = 0;
  while (i < area.length) {
    const code = area[i];
    if (code === Opt.PAD) { i++; continue; }
    if (code === Opt.END) return;
    if (i + 1 >= area.length) throw new DhcpDecodeError('truncated-option', `option ${code} in ${where} has no length octet`);
    const len = area[i + 1];
    if (i + 2 + len > area.length) {
      throw new DhcpDecodeError('option-overrun', `option ${code} in ${where} claims ${len} octets, ${area.length - i - 2} remain`);
    }
    const value = area.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    into.set(code, prev ? Buffer.concat([prev, value]) : Buffer.from(value));
    i += 2 + len;
  }
  if (requireEnd) throw new DhcpDecodeError('missing-end', `no End option (255) in ${where}`);
}

export function decode(buf: Buffer): DhcpPacket {
  if (buf.length > MAX_PACKET_BYTES) throw new DhcpDecodeError('oversized', `${buf.length} bytes, at most ${MAX_PACKET_BYTES} accepted`);
  if (buf.length < OPTIONS_OFFSET) throw new DhcpDecodeError('truncated-header', `${buf.length} bytes, at least ${OPTIONS_OFFSET} required`);
  if (buf.readUInt32BE(FIXED_HEADER_BYTES) !== MAGIC_COOKIE) throw new DhcpDecodeError('bad-cookie', 'magic cookie is not 99.130.83.99 (RFC 2131 §3)');
  const hlen = buf[2];
  if (hlen > 16) throw new DhcpDecodeError('bad-hlen', `hlen ${hlen} exceeds the 16-octet chaddr field`);
  const options = new Map<number, Buffer>();
  parseOptions(buf.subarray(OPTIONS_OFFSET), options, 'options', true);
  let sname = buf.subarray(44, 108);
  let file = buf.subarray(108, 236);
  const overload = options.get(Opt.OVERLOAD);
  if (overload) {
    // RFC 2132 §9.3: 1 = file holds options, 2 = sname, 3 = both; parsed file first.
    if (overload.length !== 1 || overload[0] < 1 || overload[0] > 3) throw new DhcpDecodeError('bad-overload', 'option 52 must be one octet 1..3');
    if (overload[0] & 1) { parseOptions(file, options, 'file', false); file = Buffer.alloc(0); }
    if (overload[0] & 2) { parseOptions(sname, options, 'sname', false); sname = Buffer.alloc(0); }
  }
  const chaddr = formatMac(buf.subarray(28, 28 + hlen));
  return {
    op: buf[0], htype: buf[1], hlen, hops: buf[3], xid: buf.readUInt32BE(4), secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10), ciaddr: ipAt(buf, 12), yiaddr: ipAt(buf, 16), siaddr: ipAt(buf, 20),
    giaddr: ipAt(buf, 24), chaddr, sname: cString(sname), file: cString(file), options,
  };
}

function writeIp(buf: Buffer, off: number, ip: string, field: string): void {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`${field}: "${ip}" is not a dotted-quad IPv4 address`);
  }
  parts.forEach((p, k) => { buf[off + k] = p; });
}

function writeString(buf: Buffer, off: number, max: number, s: string, field: string): void {
  const bytes = Buffer.from(s, 'latin1');
  // The field is NUL-terminated, so one octet is reserved.
  if (bytes.length >= max) throw new RangeError(`${field}: ${bytes.length} bytes, at most ${max - 1} fit`);
  bytes.copy(buf, off);
}

export function encode(p: DhcpPacket): Buffer {
  const opts: Buffer[] = [];
  const order = [...p.options.keys()].filter((c) => c !== Opt.END && c !== Opt.PAD);
  // Message type first: some PXE ROMs look only at the first option.
  order.sort((a, b) => (a === Opt.MESSAGE_TYPE ? -1 : b === Opt.MESSAGE_TYPE ? 1 : 0));
  for (const code of order) {
    const value = p.options.get(code)!;
    // RFC 3396 §6: values over 255 octets are split into consecutive instances.
    let off = 0;
    do {
      const chunk = value.subarray(off, off + 255);
      opts.push(Buffer.from([code, chunk.length]), chunk);
      off += 255;
    } while (off < value.length);
  }
  opts.push(Buffer.from([Opt.END]));
  const optionBytes = Buffer.concat(opts);
  const buf = Buffer.alloc(Math.max(MIN_REPLY_BYTES, OPTIONS_OFFSET + optionBytes.length));
  buf[0] = p.op; buf[1] = p.htype; buf[2] = p.hlen; buf[3] = p.hops;
  buf.writeUInt32BE(p.xid >>> 0, 4);
  buf.writeUInt16BE(p.secs, 8);
  buf.writeUInt16BE(p.flags, 10);
  writeIp(buf, 12, p.ciaddr, 'ciaddr');
  writeIp(buf, 16, p.yiaddr, 'yiaddr');
  writeIp(buf, 20, p.siaddr, 'siaddr');
  writeIp(buf, 24, p.giaddr, 'giaddr');
  const mac = Buffer.from(p.chaddr.replace(/:/g, ''), 'hex');
  if (mac.length > 16) throw new RangeError(`chaddr: ${mac.length} octets, at most 16 fit`);
  mac.copy(buf, 28);
  writeString(buf, 44, 64, p.sname, 'sname');
  writeString(buf, 108, 128, p.file, 'file');
  buf.writeUInt32BE(MAGIC_COOKIE, FIXED_HEADER_BYTES);
  optionBytes.copy(buf, OPTIONS_OFFSET);
  return buf;
}

/** Option value helpers. */
export const OptionValue = {
  ip(ip: string): Buffer {
    const b = Buffer.alloc(4);
    writeIp(b, 0, ip, 'option address');
    return b;
  },
  ips(list: string[]): Buffer {
    return Buffer.concat(list.map((ip) => OptionValue.ip(ip)));
  },
  u32(n: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  },
  u8(n: number): Buffer {
    return Buffer.from([n & 0xff]);
  },
  text(s: string): Buffer {
    return Buffer.from(s, 'latin1');
  },
  readIp(b: Buffer | undefined): string | null {
    return b && b.length === 4 ? ipAt(b, 0) : null;
  },
};
