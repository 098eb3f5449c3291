/** TFTP packet codec: RFC 1350 §5 opcodes, RFC 2347 option extension (OACK). */

export enum TftpOp { RRQ = 1, WRQ = 2, DATA = 3, ACK = 4, ERROR = 5, OACK = 6 }

/** RFC 1350 §5 error codes (8 from RFC 2347 §2). */
export enum TftpErr { UNDEFINED = 0, NOT_FOUND = 1, ACCESS_VIOLATION = 2, DISK_FULL = 3, ILLEGAL_OP = 4, UNKNOWN_TID = 5, EXISTS = 6, NO_USER = 7, OPTION_REFUSED = 8 }

export interface TftpRequest {
  op: TftpOp.RRQ | TftpOp.WRQ;
  filename: string;
  mode: string;
  /** Lower-cased option names (RFC 2347 §2: case-insensitive). */
  options: Map<string, string>;
}

export class TftpDecodeError extends Error {}

/** Decodes RRQ/WRQ: opcode, then NUL-terminated strings (RFC 1350 §5, RFC 2347 §2). */
export function decodeRequest(buf: Buffer): TftpRequest {
  if (buf.length < 4) throw new TftpDecodeError(`request of ${buf.length} bytes is shorter than the 4-byte minimum`);
  const op = buf.readUInt16BE(0);
  if (op !== TftpOp.RRQ && op !== TftpOp.WRQ) throw new TftpDecodeError(`opcode ${op} is not a request (expected 1 RRQ or 2 WRQ)`);
  const fields: string[] = [];
  let i = 2;
  while (i < buf.length) {
    const nul = buf.indexOf(0, i);
    if (nul < 0) throw new TftpDecodeError('request field is not NUL-terminated');
    fields.push(buf.subarray(i, nul).toString('latin1'));
    i = nul + 1;
  }
  if (fields.length < 2) throw new TftpDecodeError('request lacks filename or mode');
  const options = new Map<string, string>();
  for (let k = 2; k + 1 < fields.length; k += 2) options.set(fields[k].toLowerCase(), fields[k + 1]);
  return { op, filename: fields[0], mode: fields[1].toLowerCase(), options };
}

export function encodeData(block: number, data: Buffer): Buffer {
  const b = Buffer.allocUnsafe(4 + data.length);
  b.writeUInt16BE(TftpOp.DATA, 0);
  b.writeUInt16BE(block & 0xffff, 2);
  data.copy(b, 4);
  return b;
}

export function encodeError(code: TftpErr, message: string): Buffer {
  const msg = Buffer.from(message, 'latin1');
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt16BE(TftpOp.ERROR, 0);
  b.writeUInt16BE(code, 2);
  msg.copy(b, 4);
  return b;
}

export function encodeOack(options: Map<string, string>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, TftpOp.OACK])];
  for (const [k, v] of options) parts.push(Buffer.from(`${k}\0${v}\0`, 'latin1'));
  return Buffer.concat(parts);
}
