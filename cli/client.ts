import { credentials, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY } from '../common/errors.js';
import type { ClientConfig } from './client-config.js';

/** A refusal or failure from the server, already worded for the operator. */
export class ServerError extends Error {
  constructor(message: string, readonly code: string, readonly grpcCode: number) {
    super(message);
  }
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
    const code = String(e.metadata?.get(ERROR_CODE_METADATA_KEY)[0] ?? '');
    const d = e.details ?? e.message;
    if (e.code === status.UNAVAILABLE && !code) {
      if (/ECONNREFUSED/.test(d)) return new ServerError(`cannot reach ${where}: connection refused (is ospd running and listening there?)`, 'UNAVAILABLE', e.code);
      if (/SSL|TLS|certificate|handshake|self.signed|wrong version/i.test(d)) {
        return new ServerError(`TLS with ${where} failed: the server's certificate is not signed by the CA in ${this.cfg.source}, or it is not speaking TLS`, 'UNAVAILABLE', e.code);
      }
      return new ServerError(`cannot reach ${where}: ${d}`, 'UNAVAILABLE', e.code);
    }
    if (e.code === status.DEADLINE_EXCEEDED && !code) return new ServerError(`${where} did not answer within ${this.timeoutMs / 1000} s`, 'DEADLINE_EXCEEDED', e.code);
    if (e.code === status.UNAUTHENTICATED) return new ServerError(`${where} refused the admin token from ${this.cfg.source}`, code || 'UNAUTHENTICATED', e.code);
    return new ServerError(d, code || status[e.code], e.code);
  }
}
