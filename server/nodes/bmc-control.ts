import type { Logger } from '../../common/logging.js';
import type { BmcConfig } from '../config.js';
import type { Database } from '../store/db.js';
import type { SecretBox } from '../security/secrets.js';
import { SqlitePowerSyncStore } from '../store/power.js';
import { DriverRegistry } from '../bmc/registry.js';
import { IpmiDriver } from '../bmc/ipmi.js';
import { RedfishDriver } from '../bmc/redfish.js';
import { FakeDriver } from '../bmc/fake.js';
import { PowerSync } from '../bmc/sync.js';
import type { Service } from '../lifecycle.js';
import type { NodeRegistry } from './registry.js';
import { ProvisionStates } from './provision.js';
import { NodePower } from './power.js';

/**
 * Everything ospd needs to drive BMCs, built from one config section: the
 * drivers, operator actions, and the power-state sync loop. Started after
 * the store, stopped before it.
 */
export class BmcControl implements Service {
  readonly drivers = new DriverRegistry();
  readonly states: ProvisionStates;
  readonly power: NodePower;
  readonly sync?: PowerSync;

  constructor(
    db: Database,
    registry: NodeRegistry,
    secrets: SecretBox,
    cfg: BmcConfig,
    private readonly log: Logger,
  ) {
    this.drivers.register(new IpmiDriver({
      cipherSuites: cfg.ipmiCipherSuites, minIntervalMs: cfg.minIntervalMs, callTimeoutMs: cfg.callTimeoutMs,
      powerWaitTimeoutMs: cfg.powerWaitTimeoutMs, logger: log.child({ driver: 'ipmi' }),
    }));
    this.drivers.register(new RedfishDriver({ callTimeoutMs: cfg.callTimeoutMs, powerWaitTimeoutMs: cfg.powerWaitTimeoutMs }));
    this.drivers.register(new FakeDriver());
    this.states = new ProvisionStates(db, registry, log.child({ component: 'provision' }));
    this.power = new NodePower(db, registry, this.states, this.drivers, { powerWaitTimeoutMs: cfg.powerWaitTimeoutMs }, log);
    if (cfg.syncIntervalMs > 0) {
      const store = new SqlitePowerSyncStore(db, secrets, (uuid) => this.power.isBusy(uuid));
      this.sync = new PowerSync(store, this.drivers, store, {
        intervalMs: cfg.syncIntervalMs, concurrency: cfg.syncConcurrency, maxFailures: cfg.syncMaxFailures,
        // One read may retry; the bound keeps a stuck BMC from holding a worker past a couple of calls.
        nodeTimeoutMs: Math.max(30_000, cfg.callTimeoutMs * 2),
        jitterMs: Math.min(200, Math.floor(cfg.syncIntervalMs / 10)),
      }, log.child({ component: 'power-sync' }));
    }
  }

  async start(): Promise<void> {
    await this.power.start();
    this.sync?.start();
    this.log.info({ drivers: this.drivers.names(), powerSyncIntervalMs: this.sync?.options.intervalMs ?? 0 }, 'BMC control started');
  }

  async stop(): Promise<void> {
    await this.sync?.stop();
    await this.power.stop();
    await this.drivers.stop();
  }
}
