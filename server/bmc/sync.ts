import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import type { DriverRegistry } from './registry.js';
import { BmcError, type DriverInfo, type PowerState } from './types.js';
import { sleep } from './pacing.js';

/** Ironic's fault name for maintenance set by power sync; only such nodes are taken out again automatically. */
export const POWER_FAILURE_FAULT = 'power failure';

export interface SyncNode {
  uuid: string;
  name?: string;
  driver: string;
  driverInfo: DriverInfo;
  /** The power state the store holds, undefined if never read. */
  powerState?: PowerState;
  consecutiveFailures: number;
  maintenance: boolean;
  /** Set to POWER_FAILURE_FAULT when the sync loop put the node into maintenance. */
  fault?: string | null;
}

/** What the sync loop needs from the store (the lead implements it over SQLite). */
export interface PowerSyncStore {
  /** Nodes not in maintenance, plus nodes in maintenance with fault POWER_FAILURE_FAULT (for recovery). */
  listSyncable(): Promise<SyncNode[]>;
  /**
   * A successful read; resets consecutive failures to 0. May return the state
   * stored just before this write (null: never read): the listing can be
   * stale by a whole sweep, and comparing against it would lose a change
   * that an operator action and an out-of-band press made in between.
   */
  recordPowerState(uuid: string, state: PowerState): Promise<PowerState | null | void>;
  recordFailure(uuid: string, error: string, consecutiveFailures: number): Promise<void>;
  setMaintenance(uuid: string, on: boolean, reason: string | null, fault: string | null): Promise<void>;
}

export type PowerSyncEvent =
  | { type: 'power.changed_out_of_band'; uuid: string; from: PowerState | null; to: PowerState }
  | { type: 'power.sync_failed'; uuid: string; error: string; code: string; consecutiveFailures: number }
  | { type: 'maintenance.set'; uuid: string; reason: string }
  | { type: 'maintenance.cleared'; uuid: string; reason: string };

export interface PowerEventSink { emit(event: PowerSyncEvent): void | Promise<void> }

export interface PowerSyncOptions {
  intervalMs?: number;
  /** Nodes polled at once; a slow BMC holds one slot only. Default 32. */
  concurrency?: number;
  /** Random pause before each node so BMCs on one switch are not hit at once. Default 200 ms. */
  jitterMs?: number;
  /** Consecutive failures before maintenance (Ironic's power_state_sync_max_retries). Default 3. */
  maxFailures?: number;
  /** Hard bound for one node's read, so a stuck BMC cannot stall a sweep. Default 30 s. */
  nodeTimeoutMs?: number;
}

export interface SweepResult { nodes: number; ok: number; failed: number; changed: number; durationMs: number }

/** Periodic power-state sync over all syncable nodes. */
export class PowerSync {
  private timer?: NodeJS.Timeout;
  private running?: Promise<SweepResult>;
  private stopped = true;
  private readonly o: Required<PowerSyncOptions>;

  constructor(
    private readonly store: PowerSyncStore,
    private readonly drivers: DriverRegistry,
    private readonly events: PowerEventSink,
    opts: PowerSyncOptions = {},
    private readonly log: Logger = silentLogger(),
  ) {
    this.o = {
      intervalMs: opts.intervalMs ?? 60_000, concurrency: opts.concurrency ?? 32, jitterMs: opts.jitterMs ?? 200,
      maxFailures: opts.maxFailures ?? 3, nodeTimeoutMs: opts.nodeTimeoutMs ?? 30_000,
    };
  }

  /** The effective settings (defaults filled in). */
  get options(): Readonly<Required<PowerSyncOptions>> { return this.o; }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweep();
      void this.running
        .then((r) => {
          // One line a sweep: at info when something happened, so a quiet fleet stays quiet.
          if (r.changed > 0 || r.failed > 0) this.log.info(r, 'power sync sweep');
          else this.log.debug(r, 'power sync sweep');
        })
        .catch((e) => this.log.error({ err: e }, 'power sync sweep failed'))
        .finally(() => { this.running = undefined; this.schedule(); });
    }, this.o.intervalMs);
  }

  /** One pass over every syncable node; also usable on demand. */
  async sweep(): Promise<SweepResult> {
    const t0 = Date.now();
    const nodes = await this.store.listSyncable();
    const result: SweepResult = { nodes: nodes.length, ok: 0, failed: 0, changed: 0, durationMs: 0 };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < nodes.length) {
        const node = nodes[next++];
        if (this.o.jitterMs > 0) await sleep(Math.random() * this.o.jitterMs);
        const outcome = await this.syncOne(node);
        result[outcome === 'failed' ? 'failed' : 'ok']++;
        if (outcome === 'changed') result.changed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, nodes.length) }, worker));
    result.durationMs = Date.now() - t0;
    return result;
  }

  private async syncOne(node: SyncNode): Promise<'same' | 'changed' | 'failed'> {
    let state: PowerState;
    try {
      const driver = this.drivers.get(node.driver);
      state = await withTimeout(driver.getPowerState({ uuid: node.uuid, name: node.name, driverInfo: node.driverInfo }),
        this.o.nodeTimeoutMs, () => new BmcError('timeout', node.name ?? node.uuid, node.driverInfo.address, `power sync read exceeded ${this.o.nodeTimeoutMs} ms`));
    } catch (e) {
      await this.onFailure(node, e);
      return 'failed';
    }
    // A BMC mid-transition (Redfish PoweringOn/PoweringOff) says nothing about where the
    // machine ends up: recording it would turn one out-of-band change into two half-changes.
    if (state === 'unknown') {
      this.log.debug({ node: node.uuid }, 'BMC reports a transitional power state; reading again next sweep');
      return 'same';
    }
    const stored = await this.store.recordPowerState(node.uuid, state);
    const before = stored === undefined ? node.powerState : stored ?? undefined;
    if (node.maintenance && node.fault === POWER_FAILURE_FAULT) {
      await this.store.setMaintenance(node.uuid, false, null, null);
      await this.events.emit({ type: 'maintenance.cleared', uuid: node.uuid, reason: 'BMC answers again' });
    }
    if (before !== undefined && before !== state) {
      await this.events.emit({ type: 'power.changed_out_of_band', uuid: node.uuid, from: before, to: state });
      return 'changed';
    }
    return 'same';
  }

  private async onFailure(node: SyncNode, e: unknown): Promise<void> {
    const failures = node.consecutiveFailures + 1;
    const message = e instanceof Error ? e.message : String(e);
    const code = e instanceof BmcError ? e.code : 'INTERNAL';
    await this.store.recordFailure(node.uuid, message, failures);
    await this.events.emit({ type: 'power.sync_failed', uuid: node.uuid, error: message, code, consecutiveFailures: failures });
    if (!node.maintenance && failures >= this.o.maxFailures) {
      const reason = `power sync failed ${failures} times in a row: ${message}`;
      await this.store.setMaintenance(node.uuid, true, reason, POWER_FAILURE_FAULT);
      await this.events.emit({ type: 'maintenance.set', uuid: node.uuid, reason });
      this.log.warn({ node: node.uuid, failures }, 'node put into maintenance by power sync');
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => { t = setTimeout(() => reject(onTimeout()), ms); }),
  ]);
}
