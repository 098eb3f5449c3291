import { credentials, Metadata, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from '../../common/logging.js';
import { AgentServiceClient, type AckRevisionRequest } from '../../proto/gen/osp/v1/agent.js';
import type { ConfigRevision } from '../../proto/gen/osp/v1/config.js';
import type { ServerConfig } from '../collect/types.js';
import type { AgentConfig } from './agent-config.js';

export interface TransportOptions {
  cfg: AgentConfig;
  log: Logger;
  /** Called with each revision newer than the last one delivered. */
  onRevision: (cfg: ServerConfig) => Promise<void>;
  /** Called once when ospd refuses the token: the agent cannot recover by retrying. */
  onAuthRefused: (message: string) => void;
  appliedRevision: () => number;
  /** Called each time ospd accepts a config stream (its response headers arrive). */
  onStreamOpen?: () => void;
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  callTimeoutMs?: number;
}

export function toServerConfig(r: ConfigRevision): ServerConfig {
  return {
    revision: Number(r.revision),
    metadata: JSON.parse(r.metadataJson || '{}'),
    deployments: r.deployments.map((d) => ({
      id: d.id, name: d.name, group: d.group,
      config: d.group === 'apply-config' ? JSON.parse(d.config) : d.config,
      inputs: d.inputs.map((i) => ({ name: i.name, value: i.valueJson === '' ? '' : JSON.parse(i.valueJson) })),
      options: d.optionsJson ? JSON.parse(d.optionsJson) : null,
    })),
  };
}

/**
 * Holds the config stream to ospd. When the stream dies (server restart,
 * network loss, keepalive timeout) the agent polls with exponential backoff
 * and reopens the stream; each poll is also the probe that says the server
 * is back. A refused token ends everything at once: retrying cannot help.
 */
export class AgentTransport {
  readonly client: AgentServiceClient;
  private stream?: ClientReadableStream<ConfigRevision>;
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private delivered = 0;
  private chain: Promise<void> = Promise.resolve();
  streamsOpened = 0;

  constructor(private readonly o: TransportOptions, channelOptions: Record<string, number | string> = {}) {
    this.client = new AgentServiceClient(o.cfg.server, credentials.createSsl(Buffer.from(o.cfg.ca)), {
      ...channelOptions,
      'grpc.keepalive_time_ms': o.keepaliveTimeMs ?? 10_000,
      'grpc.keepalive_timeout_ms': o.keepaliveTimeoutMs ?? 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5_000,
    });
  }

  md(): Metadata {
    const md = new Metadata();
    md.set('authorization', `Bearer ${this.o.cfg.token}`);
    md.set('osp-node', this.o.cfg.node);
    return md;
  }

  start(): void {
    this.stopped = false;
    this.delivered = this.o.appliedRevision();
    this.openStream();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.stream?.cancel();
    this.client.close();
  }

  /** Revisions are delivered one at a time, in order, and only when newer. */
  private deliver(r: ConfigRevision): void {
    this.chain = this.chain.then(async () => {
      const rev = Number(r.revision);
      if (rev <= this.delivered) return;
      this.delivered = rev;
      this.o.log.info({ revision: rev, hash: r.contentHash }, 'config revision received');
      await this.o.onRevision(toServerConfig(r));
    }).catch((e) => this.o.log.error({ err: e }, 'could not take config revision'));
  }

  private refused(e: ServiceError): boolean {
    if (e.code !== status.UNAUTHENTICATED) return false;
    this.o.log.error({ server: this.o.cfg.server, node: this.o.cfg.node }, 'ospd refused this agent\'s token');
    this.stop();
    this.o.onAuthRefused(`ospd at ${this.o.cfg.server} refused the token for node ${this.o.cfg.node}: it was revoked or replaced; get a new agent.yaml with 'ospctl node agent-config ${this.o.cfg.node}'`);
    return true;
  }

  private openStream(): void {
    if (this.stopped) return;
    const s = this.client.watchConfig({ appliedRevision: this.delivered }, this.md());
    this.stream = s;
    this.streamsOpened++;
    let gotData = false;
    s.on('data', (r: ConfigRevision) => {
      if (!gotData) {
        gotData = true;
        this.failures = 0;
      }
      this.deliver(r);
    });
    s.on('metadata', () => {
      this.failures = 0;
      this.o.onStreamOpen?.();
    });
    s.on('error', (e: ServiceError) => {
      // CANCELLED after our own stop() is expected; from the server it means the stream was cut.
      if (this.stopped) return;
      if (this.refused(e)) return;
      this.o.log.warn({ code: status[e.code], details: e.details }, 'config stream lost; polling until it returns');
      this.scheduleFallback();
    });
    s.on('end', () => {
      if (this.stopped) return;
      this.o.log.warn('config stream ended by ospd; polling until it returns');
      this.scheduleFallback();
    });
  }

  private backoffMs(): number {
    const min = this.o.minBackoffMs ?? 500;
    const max = this.o.maxBackoffMs ?? 30_000;
    const base = Math.min(max, min * 2 ** Math.min(20, this.failures));
    return base / 2 + Math.random() * (base / 2);
  }

  private scheduleFallback(): void {
    if (this.stopped || this.timer) return;
    this.stream = undefined;
    const wait = this.backoffMs();
    this.failures++;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poll();
    }, wait);
  }

  private poll(): void {
    if (this.stopped) return;
    const deadline = new Date(Date.now() + (this.o.callTimeoutMs ?? 10_000));
    this.client.pollConfig({ appliedRevision: this.delivered }, this.md(), { deadline }, (e, r) => {
      if (this.stopped) return;
      if (e) {
        if (this.refused(e)) return;
        this.o.log.debug({ code: status[e.code] }, 'config poll failed');
        this.scheduleFallback();
        return;
      }
      if (r.revision) this.deliver(r.revision);
      this.openStream();
    });
  }

  /** Acknowledges one run; retried a few times, since the server may be restarting. */
  async ack(req: AckRevisionRequest, attempts = 5): Promise<boolean> {
    for (let i = 0; i < attempts && !this.stopped; i++) {
      const err = await new Promise<ServiceError | null>((resolve) => {
        this.client.ackRevision(req, this.md(), { deadline: new Date(Date.now() + (this.o.callTimeoutMs ?? 10_000)) }, (e) => resolve(e));
      });
      if (!err) return true;
      if (this.refused(err)) return false;
      this.o.log.warn({ code: status[err.code], details: err.details, revision: req.revision }, 'acknowledgement failed; retrying');
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** i)));
    }
    return false;
  }
}
