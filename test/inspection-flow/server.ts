import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '../../common/logging.js';
import { Database } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { SecretBox } from '../../server/security/secrets.js';
import { ensureServerTls } from '../../server/security/pki.js';
import { ensureAdminCredentials } from '../../server/security/admin.js';
import { NodeRegistry } from '../../server/nodes/registry.js';
import { BmcControl } from '../../server/nodes/bmc-control.js';
import { NodeConfigs } from '../../server/agents/configs.js';
import { GrpcApi } from '../../server/api/server.js';
import { adminAuthenticator } from '../../server/api/admin-auth.js';
import { nodeService } from '../../server/api/node-service.js';
import { SqliteTelemetrySink } from '../../server/telemetry/sqlite-sink.js';
import { InspectionRuntime, INSPECTION_DEFAULTS, type InspectionConfig } from '../../server/inspection/runtime.js';
import type { BootHistory } from '../../server/inspection/explain.js';
import { RuleStore } from '../../server/inspection/rule-store.js';

/**
 * ospd's services that inspection needs, composed the way server/main.ts
 * composes them (the real store, BMC control with its fake driver, agent
 * tokens, the gRPC API over TLS on loopback), plus the inspection runtime,
 * which main.ts does not wire yet. Stop and start again on the same data
 * directory is an ospd restart.
 */
export class InspectionServer {
  db?: Database;
  api?: GrpcApi;
  bmc?: BmcControl;
  registry?: NodeRegistry;
  runtime?: InspectionRuntime;
  rules?: RuleStore;
  caSha256 = '';
  port = 0;

  constructor(
    readonly cfg: Partial<InspectionConfig> = {},
    readonly dataDir = mkdtempSync(path.join(os.tmpdir(), 'ospd-inspect-')),
    readonly log: Logger = silentLogger(),
    readonly bootHistory?: BootHistory,
  ) {}

  get adminConfig(): string {
    return path.join(this.dataDir, 'admin.yaml');
  }

  async start(): Promise<void> {
    const log = this.log;
    this.db = await Database.open(path.join(this.dataDir, 'ospd.sqlite'), log);
    await migrate(this.db, undefined, log);
    const secrets = await SecretBox.loadOrCreate(this.dataDir);
    const tls = await ensureServerTls(this.dataDir, ['127.0.0.1', 'localhost']);
    this.caSha256 = tls.caSha256;
    this.registry = new NodeRegistry(this.db, secrets, log);
    this.bmc = new BmcControl(this.db, this.registry, secrets, {
      ipmiCipherSuites: [17], minIntervalMs: 0, callTimeoutMs: 5000, powerWaitTimeoutMs: 5000, syncIntervalMs: 0, syncConcurrency: 1, syncMaxFailures: 3,
    }, log);
    await this.bmc.start();
    const configs = new NodeConfigs(this.db, this.registry, log);
    this.rules = new RuleStore(this.db, secrets);
    this.runtime = new InspectionRuntime({
      rules: this.rules,
      db: this.db, registry: this.registry, states: this.bmc.states, power: this.bmc.power, configs,
      inventory: new SqliteTelemetrySink(this.db, log), bootHistory: this.bootHistory,
      cfg: { ...INSPECTION_DEFAULTS, ...this.cfg }, log,
    });
    await this.runtime.start();
    const holder: { hash?: string } = {};
    const auth = adminAuthenticator(() => holder.hash);
    this.api = new GrpcApi({
      listen: { host: '127.0.0.1', port: this.port },
      // The CA travels with the server certificate so a ramdisk can pin it by hash.
      tls: { certPem: tls.serverCertPem + tls.caCertPem, keyPem: tls.serverKeyPem },
      services: [nodeService(this.registry, auth, log), ...this.runtime.services(auth, log)],
      log,
    });
    await this.api.start();
    // A restart keeps the port, as a restarted ospd keeps its configured one.
    this.port = this.api.boundPort;
    holder.hash = (await ensureAdminCredentials(this.dataDir, `127.0.0.1:${this.port}`, tls.caCertPem)).tokenHash;
  }

  async stop(): Promise<void> {
    await this.runtime?.stop();
    await this.api?.stop(1000);
    await this.bmc?.stop();
    await this.db?.close();
  }
}
