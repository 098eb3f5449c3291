import { Server, ServerCredentials, status, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { ReflectionService } from '@grpc/reflection';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../common/logging.js';
import type { ListenAddress } from '../config.js';

export interface GrpcService {
  definition: ServiceDefinition;
  impl: UntypedServiceImplementation;
  /** Ends the service's open server streams: they never finish on their own, and a graceful stop waits only for unary calls. */
  closeStreams?(): void;
  /** The largest request the service must accept (a stack's template bundle); the listener takes the largest of all. */
  maxRequestBytes?: number;
}

const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;

export interface GrpcApiOptions {
  listen: ListenAddress;
  tls: { certPem: string; keyPem: string };
  /** More may be added with register() before start(). */
  services?: GrpcService[];
  log: Logger;
  /** Agents ping every keepaliveTimeMs; a silent peer is dropped after keepaliveTimeoutMs. */
  /** Told about every finished call: full method path, gRPC status name, seconds. */
  observe?: (method: string, code: string, seconds: number) => void;
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
}

/** proto/osp/v1 holds the wire contract; reflection serves it as is. */
export function protoDir(): string {
  // Works from the sources (server/api) and from the build (dist/server/api).
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    try {
      if (readdirSync(path.join(dir, 'proto', 'osp', 'v1')).length) return path.join(dir, 'proto');
    } catch { /* keep climbing */ }
  }
  throw new Error('proto/osp/v1 not found beside the program');
}

/**
 * Reflection serves the FileDescriptorProtos exactly as buf compiled them
 * (proto/gen/osp.binpb). Descriptors rebuilt by protobufjs carry map entries
 * that strict peers (Python's descriptor pool, grpcurl) reject.
 */
function reflectionRoot(): Record<string, { fileDescriptorProtos: Buffer[] }> {
  const set = readFileSync(path.join(protoDir(), 'gen', 'osp.binpb'));
  const files: Buffer[] = [];
  // FileDescriptorSet: `repeated FileDescriptorProto file = 1;`
  const r = new BinaryReader(set);
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    if (field === 1) files.push(Buffer.from(r.bytes()));
    else r.skip(wire);
  }
  return { osp: { fileDescriptorProtos: files } };
}

type Observer = NonNullable<GrpcApiOptions['observe']>;

/** Wraps every handler of a service so each call's outcome and duration reach the observer. */
function observed(s: GrpcService, observe: Observer): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(s.impl)) {
    const def = s.definition[name];
    const fn = handler as (...a: unknown[]) => void;
    if (!def || def.requestStream) {
      out[name] = handler;
      continue;
    }
    out[name] = (call: { on(ev: string, f: (...a: unknown[]) => void): void }, cb?: (err: { code?: number } | null, res?: unknown) => void) => {
      const started = process.hrtime.bigint();
      const done = (code: number) => observe(def.path, status[code] ?? String(code), Number(process.hrtime.bigint() - started) / 1e9);
      if (def.responseStream) {
        // A server stream ends with 'finish' (OK), or with an error/cancel.
        let reported = false;
        const once = (code: number) => {
          if (!reported) {
            reported = true;
            done(code);
          }
        };
        call.on('finish', () => once(status.OK));
        call.on('error', (e) => once((e as { code?: number }).code ?? status.UNKNOWN));
        call.on('cancelled', () => once(status.CANCELLED));
        fn(call);
        return;
      }
      fn(call, (err: { code?: number } | null, res?: unknown) => {
        done(err ? err.code ?? status.UNKNOWN : status.OK);
        cb!(err, res);
      });
    };
  }
  return out;
}

/** The gRPC listener: TLS only, every service registered here, server reflection on. */
export class GrpcApi {
  private server?: Server;
  boundPort = 0;
  private readonly services: GrpcService[];

  constructor(private readonly opts: GrpcApiOptions) {
    this.services = [...(opts.services ?? [])];
  }

  register(services: GrpcService[]): void {
    if (this.server) throw new Error('gRPC services must be registered before the API starts');
    this.services.push(...services);
  }

  async start(): Promise<void> {
    const o = this.opts;
    const server = new Server({
      'grpc.keepalive_time_ms': o.keepaliveTimeMs ?? 30_000,
      'grpc.keepalive_timeout_ms': o.keepaliveTimeoutMs ?? 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
      'grpc.max_receive_message_length': Math.max(DEFAULT_MAX_REQUEST_BYTES, ...this.services.map((s) => s.maxRequestBytes ?? 0)),
    });
    for (const s of this.services) server.addService(s.definition, o.observe ? observed(s, o.observe) : s.impl);
    new ReflectionService(reflectionRoot() as never).addToServer(server);
    const creds = ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(o.tls.certPem), private_key: Buffer.from(o.tls.keyPem) }], false);
    const host = o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host;
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${o.listen.port}`, creds, (err, port) => (err ? reject(err) : resolve(port))));
    this.server = server;
    o.log.info({ listen: `${host}:${this.boundPort}` }, 'gRPC API listening (TLS)');
  }

  /** Stops accepting; in-flight calls get graceMs to finish, then are cut. */
  async stop(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.services) s.closeStreams?.();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.opts.log.warn({ graceMs }, 'in-flight calls still running at shutdown deadline; cutting them');
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
