import { Metadata, status, type ServerReadableStream, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { ERROR_CODE_METADATA_KEY, OspError, isOspError } from '../../common/errors.js';
import { ERROR_DOMAIN, STATUS_DETAILS_METADATA_KEY, encodeRichStatus, richStatusOf } from '../../common/rich-status.js';
import { isSecretKey } from '../security/secrets.js';
import type { Logger } from '../../common/logging.js';

/** Who made a call, once authenticated. */
export interface Caller {
  kind: 'admin' | 'agent';
  /** For agents: the node's uuid. */
  node?: string;
  name: string;
}

/** Decides who a call's metadata belongs to; throws UNAUTHENTICATED otherwise. */
export type Authenticator = (md: Metadata) => Promise<Caller> | Caller;

export interface CallContext {
  caller: Caller;
  log: Logger;
  requestId: string;
}

export function bearer(md: Metadata): string | null {
  const v = md.get('authorization')[0];
  if (typeof v !== 'string') return null;
  const m = /^Bearer\s+(\S+)$/i.exec(v);
  return m ? m[1] : null;
}

/** Maps any throw to a gRPC error; unexpected ones are logged whole and answered without internals. */
export function toServiceError(e: unknown, ctx: { log: Logger; requestId: string }): Partial<ServiceError> {
  const md = new Metadata();
  if (isOspError(e)) {
    md.set(ERROR_CODE_METADATA_KEY, e.code);
    md.set(STATUS_DETAILS_METADATA_KEY, Buffer.from(encodeRichStatus(richStatusOf(e, isSecretKey))));
    if (e.code === 'UNAUTHENTICATED' || e.code === 'AGENT_TOKEN_INVALID') ctx.log.warn({ code: e.code }, 'call refused');
    else ctx.log.info({ code: e.code, msg: e.message }, 'call failed');
    return { code: e.grpcStatus, details: e.message, metadata: md };
  }
  ctx.log.error({ err: e }, 'unexpected error');
  const details = `internal error (request ${ctx.requestId}); see the ospd log`;
  md.set(ERROR_CODE_METADATA_KEY, 'INTERNAL');
  // Built from the answer alone, so the details cannot carry more than it does.
  md.set(STATUS_DETAILS_METADATA_KEY, Buffer.from(encodeRichStatus({
    code: status.INTERNAL, message: details, errorInfo: { reason: 'INTERNAL', domain: ERROR_DOMAIN, metadata: {} }, fieldViolations: [],
  })));
  return { code: status.INTERNAL, details, metadata: md };
}

/**
 * What every call does first: a request id, a logger carrying it, and the
 * caller. Authentication failures say nothing about why (no oracle).
 */
async function begin(
  base: Logger,
  method: string,
  auth: Authenticator,
  call: { metadata: Metadata; getPeer(): string },
): Promise<{ ctx: CallContext } | { refusal: Partial<ServiceError> }> {
  const requestId = randomUUID();
  const log = base.child({ method, req: requestId, peer: call.getPeer() });
  try {
    const caller = await auth(call.metadata);
    return { ctx: { caller, log: log.child({ caller: caller.name }), requestId } };
  } catch {
    return { refusal: toServiceError(new OspError('UNAUTHENTICATED'), { log, requestId }) };
  }
}

/** Wraps a unary handler: authenticate, give it a per-request logger, map errors. */
export function unary<Req, Res>(
  base: Logger,
  method: string,
  auth: Authenticator,
  fn: (req: Req, ctx: CallContext) => Promise<Res>,
) {
  return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => {
    void (async () => {
      const b = await begin(base, method, auth, call);
      if ('refusal' in b) return cb(b.refusal as ServiceError, null);
      const started = process.hrtime.bigint();
      try {
        const res = await fn(call.request, b.ctx);
        b.ctx.log.debug({ durationMs: Number(process.hrtime.bigint() - started) / 1e6 }, 'call done');
        cb(null, res);
      } catch (e) {
        cb(toServiceError(e, b.ctx) as ServiceError, null);
      }
    })();
  };
}

/** The same for server-streaming handlers; fn owns the stream until it resolves. */
export function serverStream<Req, Res>(
  base: Logger,
  method: string,
  auth: Authenticator,
  fn: (call: ServerWritableStream<Req, Res>, ctx: CallContext) => Promise<void>,
) {
  return (call: ServerWritableStream<Req, Res>) => {
    void (async () => {
      const b = await begin(base, method, auth, call);
      // grpc-js sends an 'error' event on a server stream as the call's status; destroy() would drop it silently.
      if ('refusal' in b) return void call.emit('error', b.refusal);
      try {
        await fn(call, b.ctx);
      } catch (e) {
        call.emit('error', toServiceError(e, b.ctx));
      }
    })();
  };
}

/** The same for client-streaming handlers: fn reads the request stream and returns the one answer. */
export function clientStream<Req, Res>(
  base: Logger,
  method: string,
  auth: Authenticator,
  fn: (call: ServerReadableStream<Req, Res>, ctx: CallContext) => Promise<Res>,
) {
  return (call: ServerReadableStream<Req, Res>, cb: sendUnaryData<Res>) => {
    void (async () => {
      const b = await begin(base, method, auth, call);
      if ('refusal' in b) return cb(b.refusal as ServiceError, null);
      try {
        cb(null, await fn(call, b.ctx));
      } catch (e) {
        cb(toServiceError(e, b.ctx) as ServiceError, null);
      }
    })();
  };
}
