import path from 'node:path';
import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import type { TelemetryConfig } from '../config.js';
import type { Service } from '../lifecycle.js';
import { TelemetryBroker } from './broker.js';
import { TelemetryIngest } from './ingest.js';
import { MetricsRegistry, NodeMetricsCache } from './prometheus.js';
import { FileRetainedStore } from './retained-store.js';
import { MqttAccounts, type AgentTokenCheck } from './accounts.js';
import { SqliteTelemetrySink } from './sqlite-sink.js';
import { MetricsRetentionJob } from './retention-job.js';

export interface TelemetryRuntimeOptions {
  db: Database;
  /** Node tokens (NodeConfigs): agents log in to MQTT with node name + token. */
  agents: AgentTokenCheck;
  cfg: TelemetryConfig;
  dataDir: string;
  /** The server certificate from ensureServerTls (same CA as gRPC). */
  tls: { certPem: string; keyPem: string; caPem: string };
  registry: MetricsRegistry;
  log: Logger;
}

/**
 * Telemetry inside ospd: the broker with its listeners and retained state,
 * ingest into the store, and the retention timer. Started after the store,
 * stopped before it; the broker stops before ingest so the offline messages
 * it publishes for connected agents still reach the store.
 */
export class TelemetryRuntime implements Service {
  readonly accounts: MqttAccounts;
  readonly sink: SqliteTelemetrySink;
  readonly nodeMetrics = new NodeMetricsCache();
  readonly broker: TelemetryBroker;
  private readonly ingest: TelemetryIngest;
  private readonly retention: MetricsRetentionJob;

  constructor(private readonly opts: TelemetryRuntimeOptions) {
    const { db, cfg, log, registry } = opts;
    this.accounts = new MqttAccounts(db, opts.agents, log.child({ component: 'mqtt-accounts' }));
    this.sink = new SqliteTelemetrySink(db, log.child({ component: 'telemetry-store' }));
    registry.addCollector(this.nodeMetrics);
    this.broker = new TelemetryBroker({
      authenticator: this.accounts,
      tls: cfg.mqttListen ? { ...cfg.mqttListen, certPem: opts.tls.certPem, keyPem: opts.tls.keyPem, caPem: opts.tls.caPem } : undefined,
      plain: cfg.mqttPlainListen ?? undefined,
      ws: cfg.mqttWsListen ? { ...cfg.mqttWsListen, certPem: opts.tls.certPem, keyPem: opts.tls.keyPem, caPem: opts.tls.caPem } : undefined,
      retained: new FileRetainedStore(path.join(opts.dataDir, 'mqtt-retained.json')),
      registry,
      logger: log.child({ component: 'mqtt' }),
    });
    this.ingest = new TelemetryIngest({ bus: this.broker, sink: this.sink, nodeMetrics: this.nodeMetrics, registry, logger: log.child({ component: 'ingest' }) });
    this.retention = new MetricsRetentionJob({
      db, policy: { rawWindowMs: cfg.metricsRawWindowMs, maxAgeMs: cfg.metricsRetentionMs }, logger: log.child({ component: 'retention' }),
    });
  }

  async start(): Promise<void> {
    // Ingest subscribes on the broker's in-process bus, which exists once aedes
    // is up; retained messages restored at broker start are therefore replayed
    // to ingest by the agents' own republish on reconnect, not needed here.
    await this.broker.start();
    await this.ingest.start();
    this.retention.start();
  }

  /** Bound MQTT ports by listener (`tls`, `plain`, `ws`). */
  ports(): Record<string, number> {
    return this.broker.ports();
  }

  /** `mqtts://HOST:PORT` for agent.yaml, or '' when the TLS listener is off. */
  mqttUrl(host: string): string {
    const port = this.ports().tls;
    if (!port) return '';
    return `mqtts://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  async stop(): Promise<void> {
    await this.retention.stop();
    await this.broker.stop();
    await this.ingest.stop();
    await this.sink.drain();
  }
}
