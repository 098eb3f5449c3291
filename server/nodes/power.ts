import { OspError, isOspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import { powerStore } from '../store/power.js';
import type { DriverRegistry } from '../bmc/registry.js';
import { toDriverInfo } from '../bmc/driver-info.js';
import {
  BOOT_DEVICES, POWER_ACTIONS, type BootDeviceRequest, type NodeTarget, type PowerAction, type PowerDriver, type PowerState,
} from '../bmc/types.js';
import type { NodeRecord } from './model.js';
import type { NodeRegistry } from './registry.js';
import type { ProvisionStates } from './provision.js';

export interface NodePowerOptions {
  /** Bound on waiting for the BMC to report a requested power state. */
  powerWaitTimeoutMs: number;
}

/** The fault recorded when the sync loop set maintenance; an operator's unset clears it too. */
const OPERATOR_FAULT = null;

/**
 * Operator-facing BMC actions on registered nodes: power, boot device,
 * credential verification (`manage`) and maintenance. Each action is one
 * node event with who asked, what, the result and how long the BMC took.
 */
export class NodePower {
  private readonly verifying = new Set<Promise<unknown>>();
  /** Nodes with a BMC action running (count per uuid): the power sync must not call its effects out of band. */
  private readonly inFlight = new Map<string, number>();

  isBusy(uuid: string): boolean { return (this.inFlight.get(uuid) ?? 0) > 0; }

  constructor(
    private readonly db: Database,
    private readonly registry: NodeRegistry,
    private readonly states: ProvisionStates,
    private readonly drivers: DriverRegistry,
    private readonly opts: NodePowerOptions,
    private readonly log: Logger,
  ) {}

  /** Nodes left in `verifying` by a previous run can never finish: send them back to enroll. */
  async start(): Promise<void> {
    const stuck = await nodeStore.list(this.db, { provisionState: 'verifying', limit: 100_000 });
    for (const n of stuck) {
      await this.states.apply(n.uuid, 'fail', 'server', { lastError: 'credential verification interrupted by an ospd restart; run manage again' });
    }
  }

  /** Lets running verifications finish so their end state is written. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.verifying]);
  }

  private target(n: NodeRecord): { driver: PowerDriver; target: NodeTarget; secret?: string } {
    const plain = this.registry.revealDriverInfo(n);
    const driver = this.drivers.get(n.driver);
    const driverInfo = toDriverInfo(plain);
    driver.validateInfo(driverInfo);
    return { driver, target: { uuid: n.uuid, name: n.name, driverInfo }, secret: plain.password };
  }

  /**
   * Drivers already keep passwords out of their messages; this is the second
   * line: nothing that reaches an answer, a log or an event contains it.
   */
  private clean(e: unknown, n: NodeRecord, secret?: string): OspError {
    const scrub = (s: string) => (secret ? s.split(secret).join('******') : s);
    if (isOspError(e)) {
      if (!secret || !e.message.includes(secret)) return e;
      return new OspError(e.code, scrub(e.message), e.details);
    }
    return new OspError('BMC_ERROR', `node ${n.name}: ${scrub(e instanceof Error ? e.message : String(e))}`, { node: n.name });
  }

  /** Runs one BMC action, writes its event (and power state) in one transaction, rethrows failures. */
  private async act<T>(
    id: string, actor: string, type: string, what: string, data: Record<string, unknown>,
    fn: (d: PowerDriver, t: NodeTarget) => Promise<T>, powerOf: (r: T) => PowerState | undefined,
  ): Promise<{ node: NodeRecord; result: T; durationMs: number }> {
    const n = await this.registry.get(id);
    const started = process.hrtime.bigint();
    let secret: string | undefined;
    let result: T | undefined;
    let failure: OspError | undefined;
    this.inFlight.set(n.uuid, (this.inFlight.get(n.uuid) ?? 0) + 1);
    try {
      const t = this.target(n);
      secret = t.secret;
      result = await fn(t.driver, t.target);
    } catch (e) {
      failure = this.clean(e, n, secret);
    }
    const durationMs = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
    const power = result === undefined ? undefined : powerOf(result);
    const node = await this.db.transaction(async (tx) => {
      const cur = await this.registry.get(n.uuid, tx);
      const next = power && power !== 'unknown' ? { ...cur, powerState: power, updatedAt: new Date().toISOString() } : cur;
      if (next !== cur) await nodeStore.update(tx, next);
      await nodeStore.appendEvent(tx, {
        nodeUuid: n.uuid, type, actor,
        message: failure ? `${what}: failed: ${failure.message}` : `${what}: ok${power ? ` (${power})` : ''} in ${durationMs} ms`,
        data: { ...data, result: failure ? 'error' : 'ok', ...(failure ? { code: failure.code } : {}), ...(power ? { powerState: power } : {}), durationMs },
      });
      return next;
    }).finally(() => {
      const left = (this.inFlight.get(n.uuid) ?? 1) - 1;
      if (left > 0) this.inFlight.set(n.uuid, left);
      else this.inFlight.delete(n.uuid);
    });
    this.log.info({ node: n.name, actor, action: what, result: failure ? failure.code : 'ok', durationMs }, 'BMC action');
    if (failure) throw failure;
    return { node, result: result as T, durationMs };
  }

  async powerState(id: string, actor: string): Promise<{ node: NodeRecord; state: PowerState; durationMs: number }> {
    const n = await this.registry.get(id);
    const started = process.hrtime.bigint();
    let state: PowerState;
    let secret: string | undefined;
    try {
      const t = this.target(n);
      secret = t.secret;
      state = await t.driver.getPowerState(t.target);
    } catch (e) {
      throw this.clean(e, n, secret);
    }
    const durationMs = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
    // A read is not an action, so no event; the stored power state follows the BMC.
    if (state !== n.powerState) await powerStore.setPowerState(this.db, n.uuid, state, new Date().toISOString());
    this.log.debug({ node: n.name, actor, state, durationMs }, 'power state read');
    return { node: await this.registry.get(n.uuid), state, durationMs };
  }

  async setPower(id: string, action: string, wait: boolean, actor: string): Promise<{ node: NodeRecord; state: PowerState; durationMs: number }> {
    if (!POWER_ACTIONS.includes(action as PowerAction)) {
      throw new OspError('INVALID_ARGUMENT', `action: ${JSON.stringify(action)}: expected one of ${POWER_ACTIONS.join(', ')}`, { field: 'action' });
    }
    const r = await this.act(id, actor, 'power', `power ${action}`, { action, wait },
      (d, t) => d.setPowerState(t, action as PowerAction, { wait, waitTimeoutMs: this.opts.powerWaitTimeoutMs }), (s) => s);
    return { node: r.node, state: r.result, durationMs: r.durationMs };
  }

  async setBootDevice(id: string, req: BootDeviceRequest, actor: string): Promise<NodeRecord> {
    if (!BOOT_DEVICES.includes(req.device)) {
      throw new OspError('INVALID_ARGUMENT', `device: ${JSON.stringify(req.device)}: expected one of ${BOOT_DEVICES.join(', ')}`, { field: 'device' });
    }
    if (req.mode !== undefined && req.mode !== 'uefi' && req.mode !== 'bios') {
      throw new OspError('INVALID_ARGUMENT', `mode: ${JSON.stringify(req.mode)}: expected uefi, bios or empty`, { field: 'mode' });
    }
    const what = `boot device ${req.device} (${req.persistent ? 'persistent' : 'next boot only'}${req.mode ? `, ${req.mode}` : ''})`;
    const r = await this.act(id, actor, 'boot-device', what, { device: req.device, persistent: req.persistent, mode: req.mode ?? null },
      (d, t) => d.setBootDevice(t, req), () => undefined);
    return r.node;
  }

  /**
   * enroll → verifying → manageable, or back to enroll with last_error when
   * the BMC refuses. From other states `manage` is a plain transition.
   */
  async manage(id: string, wait: boolean, actor: string): Promise<NodeRecord> {
    const cur = await this.registry.get(id);
    const node = await this.states.apply(cur.uuid, 'manage', actor);
    if (node.provisionState !== 'verifying') return node;
    const done = this.verify(node, actor);
    this.verifying.add(done);
    void done.finally(() => this.verifying.delete(done));
    return wait ? done : node;
  }

  private async verify(node: NodeRecord, actor: string): Promise<NodeRecord> {
    try {
      await this.act(node.uuid, actor, 'bmc-validate', 'verify BMC credentials', {}, (d, t) => d.validate(t), () => undefined);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      return this.states.apply(node.uuid, 'fail', actor, { lastError: msg, data: { code: isOspError(e) ? e.code : 'INTERNAL' } });
    }
    return this.states.apply(node.uuid, 'done', actor);
  }

  async setMaintenance(id: string, on: boolean, reason: string, actor: string): Promise<NodeRecord> {
    const node = await this.db.transaction(async (tx) => {
      const cur = await this.registry.get(id, tx);
      const next: NodeRecord = { ...cur, maintenance: on, maintenanceReason: on ? reason : '', updatedAt: new Date().toISOString() };
      await nodeStore.update(tx, next);
      // The operator decides now: a power-sync fault no longer applies, and the failure count starts over.
      await powerStore.resetSyncFault(tx, cur.uuid, OPERATOR_FAULT);
      await nodeStore.appendEvent(tx, {
        nodeUuid: cur.uuid, type: on ? 'maintenance.set' : 'maintenance.cleared', actor,
        message: on ? `maintenance set${reason ? `: ${reason}` : ''}` : 'maintenance cleared', data: { reason: on ? reason : null },
      });
      return next;
    });
    this.log.info({ node: node.name, actor, maintenance: on }, 'maintenance changed');
    return node;
  }
}
