import { status as GrpcStatus } from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { ErrorCode, OspError } from './errors.js';

/**
 * The gRPC rich error model (google.rpc.Status in the `grpc-status-details-bin`
 * trailer), so that any gRPC client, not only ospctl, gets an error's catalogue
 * code and the fields at fault without reading the message text. Field numbers
 * are those of google/rpc/status.proto and google/rpc/error_details.proto.
 */
export const STATUS_DETAILS_METADATA_KEY = 'grpc-status-details-bin';
export const ERROR_DOMAIN = 'osp';
export const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';
export const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';

export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

export interface FieldViolation {
  field: string;
  description: string;
}

export interface RichStatus {
  code: number;
  message: string;
  errorInfo?: ErrorInfo;
  fieldViolations: FieldViolation[];
  /** Type URLs of details this decoder does not know; kept so a caller can tell they were there. */
  otherDetails: string[];
}

// Metadata and grpc-message share the peer's header-list limit (8 KiB by default in
// gRPC core); the whole message still travels in grpc-message, so the details stay small.
const MAX_DETAILS_BYTES = 4096;
const MAX_STATUS_MESSAGE_CHARS = 512;

function errorInfoBytes(info: ErrorInfo): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(info.reason);
  w.tag(2, WireType.LengthDelimited).string(info.domain);
  for (const [k, v] of Object.entries(info.metadata)) {
    w.tag(3, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(k);
    w.tag(2, WireType.LengthDelimited).string(v);
    w.join();
  }
  return w.finish();
}

function badRequestBytes(violations: FieldViolation[]): Uint8Array {
  const w = new BinaryWriter();
  for (const v of violations) {
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(v.field);
    w.tag(2, WireType.LengthDelimited).string(v.description);
    w.join();
  }
  return w.finish();
}

function writeAny(w: BinaryWriter, typeUrl: string, value: Uint8Array): void {
  w.tag(3, WireType.LengthDelimited).fork();
  w.tag(1, WireType.LengthDelimited).string(typeUrl);
  w.tag(2, WireType.LengthDelimited).bytes(value);
  w.join();
}

export function encodeRichStatus(s: Omit<RichStatus, 'otherDetails'>): Uint8Array {
  const w = new BinaryWriter();
  if (s.code) w.tag(1, WireType.Varint).int32(s.code);
  if (s.message) w.tag(2, WireType.LengthDelimited).string(s.message);
  if (s.errorInfo) writeAny(w, ERROR_INFO_TYPE, errorInfoBytes(s.errorInfo));
  if (s.fieldViolations.length) writeAny(w, BAD_REQUEST_TYPE, badRequestBytes(s.fieldViolations));
  return w.finish();
}

/** Reads a message's fields, calling `on` for each known one and skipping the rest. */
function fields(bytes: Uint8Array, on: (no: number, r: BinaryReader, wt: WireType) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (!on(no, r, wt)) r.skip(wt, no);
  }
}

const ld = (wt: WireType) => wt === WireType.LengthDelimited;

function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const info: ErrorInfo = { reason: '', domain: '', metadata: {} };
  fields(bytes, (no, r, wt) => {
    if (no === 1 && ld(wt)) info.reason = r.string();
    else if (no === 2 && ld(wt)) info.domain = r.string();
    else if (no === 3 && ld(wt)) {
      let k = '';
      let v = '';
      fields(r.bytes(), (eno, er, ewt) => {
        if (eno === 1 && ld(ewt)) k = er.string();
        else if (eno === 2 && ld(ewt)) v = er.string();
        else return false;
        return true;
      });
      info.metadata[k] = v;
    } else return false;
    return true;
  });
  return info;
}

function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const out: FieldViolation[] = [];
  fields(bytes, (no, r, wt) => {
    if (no !== 1 || !ld(wt)) return false;
    const v: FieldViolation = { field: '', description: '' };
    fields(r.bytes(), (vno, vr, vwt) => {
      if (vno === 1 && ld(vwt)) v.field = vr.string();
      else if (vno === 2 && ld(vwt)) v.description = vr.string();
      else return false;
      return true;
    });
    out.push(v);
    return true;
  });
  return out;
}

/** Decodes a google.rpc.Status; throws on bytes that are not one. */
export function decodeRichStatus(bytes: Uint8Array): RichStatus {
  const s: RichStatus = { code: 0, message: '', fieldViolations: [], otherDetails: [] };
  fields(bytes, (no, r, wt) => {
    if (no === 1 && wt === WireType.Varint) s.code = r.int32();
    else if (no === 2 && ld(wt)) s.message = r.string();
    else if (no === 3 && ld(wt)) {
      let typeUrl = '';
      let value: Uint8Array = new Uint8Array();
      fields(r.bytes(), (ano, ar, awt) => {
        if (ano === 1 && ld(awt)) typeUrl = ar.string();
        else if (ano === 2 && ld(awt)) value = ar.bytes();
        else return false;
        return true;
      });
      if (typeUrl === ERROR_INFO_TYPE) s.errorInfo = decodeErrorInfo(value);
      else if (typeUrl === BAD_REQUEST_TYPE) s.fieldViolations.push(...decodeBadRequest(value));
      else s.otherDetails.push(typeUrl);
    } else return false;
    return true;
  });
  return s;
}

/** Details copied into ErrorInfo.metadata when they are present (scalars only; lists joined). */
const METADATA_KEYS = ['field', 'key', 'value', 'expected', 'node', 'state', 'action', 'allowed', 'rule', 'source'] as const;

const MAX_METADATA_VALUE_CHARS = 256;

function scalar(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = typeof v === 'string' ? v : Array.isArray(v) ? v.map(String).join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s.length > MAX_METADATA_VALUE_CHARS ? `${s.slice(0, MAX_METADATA_VALUE_CHARS)}…` : s;
}

/**
 * The rich status of an OspError. `isSecret(field)` says whether a field's
 * value must not leave the server (BMC passwords and the like).
 */
export function richStatusOf(e: OspError, isSecret: (field: string) => boolean): RichStatus {
  const d = e.details;
  const metadata: Record<string, string> = {};
  for (const k of METADATA_KEYS) {
    const v = scalar(d[k]);
    if (v !== undefined) metadata[k] = v;
  }
  const at = typeof d.field === 'string' ? d.field : typeof d.key === 'string' ? d.key : '';
  if ('value' in metadata && at && isSecret(at)) delete metadata.value;

  const violations: FieldViolation[] = (d.problems ?? []).map((p) => (typeof p === 'string' ? { field: '', description: p } : p));
  // A refusal about one field is a bad request about that field too.
  if (!violations.length && at && e.grpcStatus === GrpcStatus.INVALID_ARGUMENT) violations.push({ field: at, description: e.message });

  const s: RichStatus = {
    code: e.grpcStatus,
    message: e.message.length > MAX_STATUS_MESSAGE_CHARS ? `${e.message.slice(0, MAX_STATUS_MESSAGE_CHARS)}…` : e.message,
    errorInfo: { reason: e.code satisfies ErrorCode, domain: ERROR_DOMAIN, metadata },
    fieldViolations: [],
    otherDetails: [],
  };
  // The BadRequest's Any wrapper and the omitted count cost at most this much.
  let size = encodeRichStatus(s).length + BAD_REQUEST_TYPE.length + 40;
  for (const v of violations) {
    const cost = badRequestBytes([v]).length;
    if (size + cost > MAX_DETAILS_BYTES) break;
    s.fieldViolations.push(v);
    size += cost;
  }
  if (s.fieldViolations.length < violations.length) metadata.problems_omitted = String(violations.length - s.fieldViolations.length);
  return s;
}
