import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '../../common/logging.js';
import { resolveConfig } from '../../server/config.js';
import { buildOspd, type Ospd } from '../../server/ospd.js';
import type { InspectionConfig } from '../../server/inspection/runtime.js';

/**
 * ospd in this process, built by the same composition root as bin/ospd, with
 * only the gRPC API listening (loopback) and BMC pacing and power sync off, so
 * the tests can reach its registry and store directly. Stop and start again
 * on the same data directory is an ospd restart.
 */
export class InspectionServer {
  ospd?: Ospd;
  port = 0;
  /** ospd's HTTP listener on 127.0.0.1 (an ephemeral port), for image downloads. */
  http = false;
  /** More ospd settings by key (`fast-track`, `mqtt-plain-listen`, ...), applied last. */
  settings: Record<string, string | boolean> = {};

  constructor(
    readonly cfg: Partial<InspectionConfig> = {},
    readonly dataDir = mkdtempSync(path.join(os.tmpdir(), 'ospd-inspect-')),
    readonly log: Logger = silentLogger(),
  ) {}

  get adminConfig(): string {
    return path.join(this.dataDir, 'admin.yaml');
  }

  private get core() {
    if (!this.ospd) throw new Error('InspectionServer not started');
    return this.ospd.core;
  }

  get db() { return this.core.db; }
  get registry() { return this.core.registry; }
  get bmc() { return this.core.bmc; }
  get rules() { return this.core.rules; }
  get runtime() { return this.core.inspection; }
  get caSha256() { return this.core.tls.caSha256; }

  async start(): Promise<void> {
    const c = this.cfg;
    const config = resolveConfig({}, {
      'data-dir': this.dataDir,
      // A restart keeps the port, as a restarted ospd keeps its configured one.
      'grpc-listen': `127.0.0.1:${this.port}`,
      'mqtt-listen': 'off', 'mqtt-plain-listen': 'off', 'http-listen': this.http ? '127.0.0.1:0' : 'off', 'tftp-listen': 'off', 'dhcp-listen': 'off',
      'ipmi-cipher-suites': '17', 'bmc-min-interval-ms': '0', 'bmc-call-timeout-ms': '5000', 'power-wait-timeout-ms': '5000', 'power-sync-interval-ms': '0',
      'shutdown-grace-ms': '1000',
      ...(c.inspectWaitTimeoutMs !== undefined ? { 'inspect-wait-timeout-ms': String(c.inspectWaitTimeoutMs) } : {}),
      ...(c.cleanWaitTimeoutMs !== undefined ? { 'clean-wait-timeout-ms': String(c.cleanWaitTimeoutMs) } : {}),
      ...(c.discovery ? { discovery: true } : {}),
      ...this.settings,
    });
    this.ospd = await buildOspd(config, { log: this.log });
    await this.ospd.start();
    this.port = this.ospd.grpcPort;
  }

  async stop(): Promise<void> {
    await this.ospd?.stop();
  }
}
