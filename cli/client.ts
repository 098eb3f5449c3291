import { credentials, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY, catalogue, codeForStatus, isErrorCode, type ErrorCode } from '../common/errors.js';
import { STATUS_DETAILS_METADATA_KEY, decodeRichStatus, type RichStatus } from '../common/rich-status.js';
import type { ClientConfig } from './client-config.js';

/** A refusal or failure, already worded for the operator; `rich` is what the server sent in the rich error model. */
export class ServerError extends Error {
  constructor(message: string, readonly code: ErrorCode, readonly rich?: RichStatus) {
    super(message);
  }

  get grpcCode(): status {
    return catalogue[this.code].status;
  }
}

/** The server's google.rpc.Status, if it sent one that decodes. */
export function richStatus(md: Metadata | undefined): RichStatus | undefined {
  const raw = md?.get(STATUS_DETAILS_METADATA_KEY)[0];
  if (!Buffer.isBuffer(raw)) return undefined;
  try {
    return decodeRichStatus(raw);
  } catch {
    return undefined;
  }
}

/**
 * The operator's text for a refusal: one line per field violation when there
 * are any (under a heading naming the file they came from), else the message.
 * Details are capped in size; when some were left out, the message (which
 * ospd words as the same lines, all of them) is the complete list.
 */
export function describeRefusal(rich: RichStatus | undefined, message: string): string {
  if (!rich?.fieldViolations.length) return message;
  const meta = rich.errorInfo?.metadata ?? {};
  if (Number(meta.problems_omitted ?? 0) > 0) return message;
  return [
    ...(meta.source ? [`${meta.source}: ${rich.fieldViolations.length} problem(s):`] : []),
    ...rich.fieldViolations.map((v) => v.description || `${v.field}: invalid`),
  ].join('\n');
}

type Unary<Req, Res> = (req: Req, md: Metadata, opts: { deadline: Date }, cb: (e: ServiceError | null, r: Res) => void) => unknown;

/** Holds the channel and turns every gRPC failure into one line an operator can act on. */
export class Connection {
  constructor(readonly cfg: ClientConfig, readonly timeoutMs: number) {}

  credentials() {
    return credentials.createSsl(Buffer.from(this.cfg.ca));
  }

  client<C extends Client>(Ctor: new (addr: string, creds: ReturnType<typeof credentials.createSsl>) => C): C {
    return new Ctor(this.cfg.server, this.credentials());
  }

  metadata(): Metadata {
    const md = new Metadata();
    md.set('authorization', `Bearer ${this.cfg.token}`);
    return md;
  }

  call<Req, Res>(client: Client, method: Unary<Req, Res>, req: Req, timeoutMs = this.timeoutMs): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(client, req, this.metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (e, r) => {
        if (e) reject(this.explain(e));
        else resolve(r);
      });
    });
  }

  explain(e: ServiceError): ServerError {
    const where = `ospd at ${this.cfg.server}`;
    const rich = richStatus(e.metadata);
    const sent = rich?.errorInfo?.reason ?? String(e.metadata?.get(ERROR_CODE_METADATA_KEY)[0] ?? '');
    const d = e.details ?? e.message;
    // No code from ospd: the failure is the channel's own (grpc-js words it; there is nothing structured to read).
    if (e.code === status.UNAVAILABLE && !sent) {
      if (/ECONNREFUSED/.test(d)) return new ServerError(`cannot reach ${where}: connection refused (is ospd running and listening there?)`, 'UNAVAILABLE');
      if (/SSL|TLS|certificate|handshake|self.signed|wrong version/i.test(d)) {
        return new ServerError(`TLS with ${where} failed: the server's certificate is not signed by the CA in ${this.cfg.source}, or it is not speaking TLS`, 'UNAVAILABLE');
      }
      return new ServerError(`cannot reach ${where}: ${d}`, 'UNAVAILABLE');
    }
    if (e.code === status.DEADLINE_EXCEEDED && !sent) return new ServerError(`${where} did not answer within ${this.timeoutMs / 1000} s`, 'DEADLINE_EXCEEDED');
    // A code from a newer ospd that this ospctl does not know still has a gRPC status.
    const code = isErrorCode(sent) ? sent : codeForStatus(e.code);
    if (e.code === status.UNAUTHENTICATED) return new ServerError(`${where} refused the admin token from ${this.cfg.source}`, code, rich);
    return new ServerError(describeRefusal(rich, d), code, rich);
  }
}
