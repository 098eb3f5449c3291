import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { ProvisionStates } from '../nodes/provision.js';
import type { NodeConfigs } from '../agents/configs.js';
import type { Service } from '../lifecycle.js';
import { processInventory } from './process.js';
import type { Rule } from './rules/types.js';
import { IntrospectBatch } from './batch.js';
import { CommandChannel } from './commands.js';
import { RamdiskEnrolment } from './enrol.js';
import type { BootHistory } from './explain.js';
import type { NodeEventSink } from '../nodes/live-events.js';
import { InspectionFlow, type InspectionOptions, type InventoryProcessor, type InventoryStore, type PowerPort } from './flow.js';

export interface InspectionConfig {
  /** inspect-wait-timeout-ms */
  inspectWaitTimeoutMs: number;
  /** clean-wait-timeout-ms */
  cleanWaitTimeoutMs: number;
  /** discovery: unknown machines that boot the ramdisk become nodes in enroll. */
  discovery: boolean;
}

/** Defaults: a PXE boot plus ramdisk download and collection takes minutes, not Ironic's 30; 15 leaves room for slow BIOS POST. */
export const INSPECTION_DEFAULTS: InspectionConfig = { inspectWaitTimeoutMs: 15 * 60_000, cleanWaitTimeoutMs: 30 * 60_000, discovery: false };

export interface InspectionRuntimeDeps {
  db: Database;
  registry: NodeRegistry;
  states: ProvisionStates;
  power: PowerPort;
  configs: NodeConfigs;
  inventory: InventoryStore;
  /** The inspection rules (RuleStore). */
  rules: { list(): Promise<Rule[]> };
  /** Replaces processInventory (derive properties, ports, rules); for embedding only. */
  process?: InventoryProcessor;
  bootHistory?: BootHistory;
  advertiseProblems?: () => string[];
  cfg: InspectionConfig;
  /** The deploy's wait and fast track (provision settings); absent: the defaults in InspectionFlow. */
  ramdisk?: Pick<InspectionOptions, 'deployWaitTimeoutMs' | 'fastTrack' | 'fastTrackTimeoutMs'>;
  events?: NodeEventSink;
  log: Logger;
}

/** Everything of inspection/cleaning ospd wires: the flow, lookups and the batch (their gRPC services are server/api/ramdisk-service.ts). */
export class InspectionRuntime implements Service {
  readonly channel = new CommandChannel();
  readonly flow: InspectionFlow;
  readonly enrolment: RamdiskEnrolment;
  readonly batch: IntrospectBatch;

  constructor(private readonly d: InspectionRuntimeDeps) {
    this.flow = new InspectionFlow({
      db: d.db, registry: d.registry, states: d.states, power: d.power, tokens: d.configs, inventory: d.inventory,
      process: d.process ?? ((uuid, inv) => processInventory({ db: d.db, registry: d.registry, rules: d.rules, log: d.log }, uuid, inv)), bootHistory: d.bootHistory, advertiseProblems: d.advertiseProblems, channel: this.channel,
      options: { inspectWaitTimeoutMs: d.cfg.inspectWaitTimeoutMs, cleanWaitTimeoutMs: d.cfg.cleanWaitTimeoutMs, ...d.ramdisk }, events: d.events, log: d.log,
    });
    this.enrolment = new RamdiskEnrolment(d.db, d.registry, d.configs, () => d.cfg.discovery, d.log.child({ component: 'ramdisk-lookup' }));
    this.batch = new IntrospectBatch(this.flow, d.registry, d.log);
  }

  async start(): Promise<void> {
    await this.flow.start();
  }

  async stop(): Promise<void> {
    await this.batch.stop();
    await this.flow.stop();
  }
}
