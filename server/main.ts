import { Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import { createLogger, type Logger } from '../common/logging.js';
import { isOspError } from '../common/errors.js';
import { hostPort, listenerHost, machineFacingHost } from './advertise.js';
import { certificateNames, readConfigFile, resolveConfig, settings, type OspdConfig } from './config.js';
import { Database } from './store/db.js';
import { migrate } from './store/migrations.js';
import { SecretBox } from './security/secrets.js';
import { ensureServerTls } from './security/pki.js';
import { ensureAdminCredentials, rotateAdminToken } from './security/admin.js';
import { adminService } from './api/admin-service.js';
import { NodeRegistry } from './nodes/registry.js';
import { GrpcApi } from './api/server.js';
import { adminAuthenticator } from './api/admin-auth.js';
import { nodeService } from './api/node-service.js';
import { BmcControl } from './nodes/bmc-control.js';
import { NodeConfigs } from './agents/configs.js';
import { configService } from './api/config-service.js';
import { AgentApi } from './api/agent-service.js';
import { MetricsRegistry } from './telemetry/prometheus.js';
import { TelemetryRuntime } from './telemetry/runtime.js';
import { TelemetryApi } from './api/telemetry-service.js';
import { PxeRuntime } from './pxe/runtime.js';
import { pxeService } from './api/pxe-service.js';
import { PROMETHEUS_CONTENT_TYPE } from './telemetry/prometheus.js';
import { registerOspdMetrics } from './telemetry/ospd-metrics.js';
import { InspectionRuntime } from './inspection/runtime.js';
import { BootLogHistory } from './inspection/boot-steps.js';
import { RuleStore } from './inspection/rule-store.js';
import { InspectionPreview } from './inspection/preview.js';
import { ruleService } from './api/rule-service.js';

export const VERSION = '0.1.0';

/**
 * The composition root: the only place that knows every service. Each is
 * built from its dependencies here, started in order, stopped in reverse.
 */
export class Ospd {
  private db?: Database;
  private api?: GrpcApi;
  private bmc?: BmcControl;
  private agentApi?: AgentApi;
  private telemetry?: TelemetryRuntime;
  private telemetryApi?: TelemetryApi;
  private pxe?: PxeRuntime;
  private inspection?: InspectionRuntime;
  /** ospd's Prometheus registry; the HTTP listener serves `render()` at /metrics. */
  readonly metrics = new MetricsRegistry();
  readonly log: Logger;
  private machineFacing = '127.0.0.1';

  constructor(readonly cfg: OspdConfig) {
    this.log = createLogger({ name: 'ospd', level: cfg.logLevel });
  }

  async start(): Promise<void> {
    const { cfg, log } = this;
    await fs.mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
    this.db = await Database.open(`${cfg.dataDir}/ospd.sqlite`, log);
    await migrate(this.db, undefined, log);
    const secrets = await SecretBox.loadOrCreate(cfg.dataDir);
    const facing = (this.machineFacing = machineFacingHost(cfg));
    const names = certificateNames(cfg, facing);
    const tls = await ensureServerTls(cfg.dataDir, names);
    if (tls.issued) log.info({ names }, 'server certificate issued');

    const registry = new NodeRegistry(this.db, secrets, log.child({ component: 'nodes' }));
    // The admin token is checked against its hash; the URL written for ospctl
    // uses the port actually bound (the configured one may be 0 in tests).
    const holder: { hash?: string } = {};
    const auth = adminAuthenticator(() => holder.hash);
    const apiLog = log.child({ component: 'api' });
    this.bmc = new BmcControl(this.db, registry, secrets, cfg.bmc, log.child({ component: 'bmc' }));
    await this.bmc.start();
    const configs = new NodeConfigs(this.db, registry, log.child({ component: 'configs' }));
    this.agentApi = new AgentApi(this.db, registry, configs, log.child({ component: 'agents' }));
    this.telemetry = new TelemetryRuntime({
      db: this.db, agents: configs, cfg: cfg.telemetry, dataDir: cfg.dataDir, registry: this.metrics, log,
      tls: { certPem: tls.serverCertPem, keyPem: tls.serverKeyPem, caPem: tls.caCertPem },
    });
    await this.telemetry.start();
    this.telemetryApi = new TelemetryApi(this.telemetry.accounts, this.telemetry.sink, registry, apiLog);
    this.pxe = new PxeRuntime({
      settings: cfg.pxe, discovery: cfg.discovery, advertise: facing, grpcPort: () => this.api!.boundPort,
      caSha256: tls.caSha256, db: this.db, log,
    });
    const inspectionRules = new RuleStore(this.db, secrets);
    const pxe = this.pxe;
    this.inspection = new InspectionRuntime({
      db: this.db, registry, states: this.bmc.states, power: this.bmc.power, configs, inventory: this.telemetry.sink, rules: inspectionRules,
      // Without our own DHCP, "no DHCP request" cannot be told apart from "DHCP served elsewhere".
      bootHistory: new BootLogHistory(pxe.store, () => pxe.services?.dhcp !== null && pxe.services?.dhcp !== undefined),
      cfg: cfg.inspection, log: log.child({ component: 'inspection' }),
    });
    // Before the API: deadlines of nodes left waiting are re-armed, interrupted work is failed.
    await this.inspection.start();
    const observe = registerOspdMetrics(this.metrics, this.db, () => pxe.status());
    this.api = new GrpcApi({
      listen: cfg.grpcListen,
      observe,
      // The chain includes the CA: the ramdisk agent pins the CA by sha256 and must see it presented.
      tls: { certPem: tls.serverCertPem + tls.caCertPem, keyPem: tls.serverKeyPem },
      services: [
        nodeService(registry, auth, apiLog),
        this.bmc.service(auth, apiLog),
        configService(configs, auth, apiLog, () => ({ server: this.clientUrl(), caPem: tls.caCertPem, caSha256: tls.caSha256, mqttUrl: this.mqttUrl() })),
        this.telemetryApi.service(auth),
        pxeService(this.pxe, this.db, registry, cfg.discovery, auth, apiLog),
        ruleService(inspectionRules, new InspectionPreview(this.db, inspectionRules), auth, apiLog),
        this.agentApi.service(),
        ...this.inspection.services(auth, apiLog),
        adminService({
          rotate: async () => {
            const r = await rotateAdminToken(cfg.dataDir, this.clientUrl(), tls.caCertPem);
            holder.hash = r.tokenHash;
            return r;
          },
        }, auth, apiLog),
      ],
      log: apiLog,
    });
    await this.api.start();
    // After the API (boot scripts carry its port), before admin.yaml announces a ready server.
    await this.pxe.start();
    this.pxe.services?.http?.addRoute('/metrics', (_req, res) => {
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
      res.end(this.metrics.render());
    });
    const admin = await ensureAdminCredentials(cfg.dataDir, this.clientUrl(), tls.caCertPem);
    holder.hash = admin.tokenHash;
    if (admin.recovered) log.warn({ adminConfig: admin.file }, 'admin.yaml held a token newer than the stored hash (a rotation was cut short); that token is now the admin token');
    log.info({ dataDir: cfg.dataDir, adminConfig: admin.file, caSha256: tls.caSha256 }, 'ospd started');
  }

  /** The gRPC API as clients and agents reach it (the port actually bound: the configured one may be 0). */
  private clientUrl(): string {
    return hostPort(listenerHost(this.cfg.grpcListen, this.machineFacing), this.api!.boundPort);
  }

  /** The TLS broker as agents reach it. */
  private mqttUrl(): string {
    return this.telemetry?.mqttUrl(listenerHost(this.cfg.telemetry.mqttListen, this.machineFacing)) ?? '';
  }

  async stop(): Promise<void> {
    this.log.info('ospd stopping');
    // Streams never finish on their own: end them so the graceful stop only waits for unary calls.
    this.agentApi?.closeAll();
    this.telemetryApi?.closeAll();
    await this.api?.stop(this.cfg.shutdownGraceMs);
    await this.pxe?.stop();
    // After the API (no new commands), before BMC control (the flow may still power nodes off).
    await this.inspection?.stop();
    // Broker before ingest (inside), both before the store they write to.
    await this.telemetry?.stop();
    // After the API: no call can start a BMC action any more; before the store: sync and verifications still write.
    await this.bmc?.stop();
    await this.db?.close();
    this.log.info('ospd stopped');
  }
}

function flagsProgram(): Command {
  const p = new Command('ospd')
    .description('osp server: node registry, BMC control, PXE, agents, telemetry')
    .version(VERSION)
    .option('--config <file>', 'YAML configuration file (keys are the flag names without --)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const s of settings) {
    const flag = s.arg ? `--${s.key} <${s.arg}>` : `--${s.key}`;
    const o = new Option(flag, s.describe);
    p.addOption(s.repeatable ? o.argParser((v: string, prev: string[] = []) => [...prev, v]) : o);
  }
  return p;
}

/** bin/ospd: parse, configure, start, and stop cleanly on SIGTERM/SIGINT. */
export async function run(argv: string[]): Promise<void> {
  const program = flagsProgram();
  let cfg: OspdConfig;
  try {
    program.parse(argv, { from: 'user' });
    const opts = program.opts<Record<string, string | string[]>>();
    const fromFile = opts.config ? await readConfigFile(String(opts.config)) : {};
    const fromFlags = Object.fromEntries(settings.map((s) => [s.key, opts[camel(s.key)]]));
    cfg = resolveConfig(fromFile, fromFlags);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
    if (isOspError(e)) process.stderr.write(`ospd: ${e.message}\n`);
    else if (!err.code?.startsWith('commander.')) process.stderr.write(`ospd: ${err.message}\n`);
    process.exit(2);
  }
  const app = new Ospd(cfg);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutdown requested');
    app.stop().then(() => process.exit(0), (e) => {
      app.log.error({ err: e }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await app.start();
  } catch (e) {
    app.log.fatal({ err: e }, 'ospd failed to start');
    process.stderr.write(`ospd: cannot start: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

function camel(k: string): string {
  return k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
