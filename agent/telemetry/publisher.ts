import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import { nodeTopic } from '../../common/topics.js';
import { MessageSpool } from './spool.js';

export interface TelemetryPublisherOptions {
  /** e.g. `mqtts://ospd:8883` or `mqtt://127.0.0.1:1883`. */
  brokerUrl: string;
  node: string;
  /** The node token; sent only inside the MQTT CONNECT packet, never logged. */
  token: string;
  /** CA certificate(s) to pin for mqtts. */
  caPem?: string | Buffer;
  collectFacts: () => Promise<object>;
  collectMetrics: () => Promise<Record<string, number>>;
  metricsIntervalMs?: number;
  /** Facts are re-collected this often and published when they change. */
  factsIntervalMs?: number;
  reconnectPeriodMs?: number;
  spool?: { memoryMessages?: number; filePath?: string; fileMaxBytes?: number };
  logger?: Logger;
}

export interface PublisherStats {
  metricsPublishedLive: number;
  metricsSpooled: number;
  metricsReplayed: number;
  metricsDropped: number;
  factsPublished: number;
}

/**
 * The agent's MQTT side: availability (online, last will offline), facts at
 * start and on change, metrics every interval. While disconnected, metrics
 * wait in a bounded spool and are replayed in order (QoS 1) on reconnect;
 * facts are a single latest-wins slot, so they are never dropped.
 */
export class TelemetryPublisher {
  private client: MqttClient | null = null;
  private timers: NodeJS.Timeout[] = [];
  private readonly spool: MessageSpool;
  /** Messages taken out of the spool and not yet acknowledged, oldest first. */
  private backlog: string[] = [];
  private facts: string | null = null;
  private factsDirty = true;
  private chain: Promise<void> = Promise.resolve();
  private flushing = false;
  private readonly log: Logger;
  readonly stats: PublisherStats = { metricsPublishedLive: 0, metricsSpooled: 0, metricsReplayed: 0, metricsDropped: 0, factsPublished: 0 };

  constructor(private readonly opts: TelemetryPublisherOptions) {
    this.log = opts.logger ?? silentLogger();
    this.spool = new MessageSpool({
      memoryMessages: opts.spool?.memoryMessages ?? 1000,
      filePath: opts.spool?.filePath,
      fileMaxBytes: opts.spool?.fileMaxBytes ?? 16 * 1024 * 1024,
    });
  }

  private topic(channel: 'availability' | 'facts' | 'metrics'): string {
    return nodeTopic(this.opts.node, channel);
  }

  async start(): Promise<void> {
    await this.spool.reset();
    await this.refreshFacts();
    const options: IClientOptions = {
      clientId: this.opts.node,
      username: this.opts.node,
      password: this.opts.token,
      clean: true,
      reconnectPeriod: this.opts.reconnectPeriodMs ?? 5000,
      connectTimeout: 10_000,
      queueQoSZero: false,
      ca: this.opts.caPem,
      rejectUnauthorized: true,
      will: { topic: this.topic('availability'), payload: Buffer.from('offline'), qos: 1, retain: true },
    };
    const client = connect(this.opts.brokerUrl, options);
    this.client = client;
    client.on('connect', () => this.serialise(() => this.onConnect()));
    client.on('close', () => this.log.debug('mqtt connection closed'));
    client.on('error', (e) => this.log.warn({ err: e.message }, 'mqtt error'));
    this.timers.push(setInterval(() => this.serialise(() => this.tick()), this.opts.metricsIntervalMs ?? 10_000));
    this.timers.push(setInterval(() => this.serialise(() => this.refreshFacts()), this.opts.factsIntervalMs ?? 300_000));
  }

  /** Clean stop: availability goes offline (retained) before disconnecting. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.chain;
    const client = this.client;
    this.client = null;
    if (!client) return;
    if (client.connected) {
      await client.publishAsync(this.topic('availability'), 'offline', { qos: 1, retain: true }).catch(() => undefined);
    }
    await client.endAsync();
  }

  /** Replace the facts now (e.g. after a config change); published when connected. */
  setFacts(facts: object): void {
    this.serialise(async () => this.updateFacts(facts));
  }

  get pending(): number {
    return this.backlog.length + this.spool.length;
  }

  private serialise(fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((e: unknown) => this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'telemetry step failed'));
  }

  private async refreshFacts(): Promise<void> {
    try {
      await this.updateFacts(await this.opts.collectFacts());
    } catch (e) {
      this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'collecting facts failed');
    }
  }

  private async updateFacts(facts: object): Promise<void> {
    const text = JSON.stringify(facts);
    if (text === this.facts) return;
    this.facts = text;
    this.factsDirty = true;
    if (this.client?.connected) await this.publishFacts();
  }

  private async publishFacts(): Promise<void> {
    if (!this.client || this.facts === null || !this.factsDirty) return;
    await this.client.publishAsync(this.topic('facts'), this.facts, { qos: 1, retain: true });
    this.factsDirty = false;
    this.stats.factsPublished++;
  }

  private async onConnect(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.log.info({ node: this.opts.node }, 'mqtt connected');
    await client.publishAsync(this.topic('availability'), 'online', { qos: 1, retain: true });
    // The broker may have lost retained state while we were away: republish.
    this.factsDirty = true;
    await this.publishFacts();
    void this.flush();
  }

  /** Replays the backlog then the spool, each message acknowledged before the next. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.client?.connected) {
        if (this.backlog.length === 0) {
          this.backlog = await this.spool.drain();
          if (this.backlog.length === 0) break;
        }
        try {
          await this.client.publishAsync(this.topic('metrics'), this.backlog[0], { qos: 1 });
        } catch {
          break; // disconnected mid-flush; resume on the next connect
        }
        this.backlog.shift();
        this.stats.metricsReplayed++;
      }
    } finally {
      this.flushing = false;
    }
  }

  private async tick(): Promise<void> {
    const metrics = await this.opts.collectMetrics();
    const text = JSON.stringify(metrics);
    const client = this.client;
    if (client?.connected && !this.flushing && this.pending === 0) {
      client.publish(this.topic('metrics'), text, { qos: 0 });
      this.stats.metricsPublishedLive++;
      return;
    }
    const before = this.spool.dropped;
    await this.spool.push(text);
    if (this.spool.dropped > before) this.stats.metricsDropped++;
    else this.stats.metricsSpooled++;
    if (client?.connected) void this.flush();
  }
}
