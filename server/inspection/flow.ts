import { OspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import type { BootDeviceRequest } from '../bmc/types.js';
import type { NodeRecord, ProvisionState } from '../nodes/model.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { ProvisionStates } from '../nodes/provision.js';
import type { Transition } from '../nodes/states.js';
import { CommandChannel, type Command } from './commands.js';
import { explainTimeout, type BootHistory } from './explain.js';
import { currentWait, waitFacts, RAMDISK_EVENT, type WaitEntry } from './history.js';

/** The BMC actions the flow needs (NodePower implements them). */
export interface PowerPort {
  setPower(id: string, action: string, wait: boolean, actor: string): Promise<unknown>;
  setBootDevice(id: string, req: BootDeviceRequest, actor: string): Promise<unknown>;
}

/** Agent token lifecycle (NodeConfigs implements it). */
export interface AgentTokens {
  issueToken(id: string, actor: string): Promise<{ token: string }>;
  revokeToken(id: string, actor: string): Promise<boolean>;
}

/**
 * What the flow calls with each stored inventory: derive properties, add
 * ports, run rules (processInventory in process.ts). A returned failure (a
 * rule's `fail`, bad root device hints) fails the inspection.
 */
export type InventoryProcessor = (nodeUuid: string, inventory: Record<string, unknown>) => Promise<{ failure?: string }>;

/** Where an inventory is kept (node_inventory; SqliteTelemetrySink implements it). */
export interface InventoryStore {
  saveFacts(nodeName: string, facts: Record<string, unknown>): Promise<void>;
}

export interface InspectionOptions {
  inspectWaitTimeoutMs: number;
  cleanWaitTimeoutMs: number;
  /** `wait call-back` of a deploy; default: the clean wait's. */
  deployWaitTimeoutMs?: number;
}

/**
 * The deploy's part of `wait call-back` (server/provision/deploy-flow.ts):
 * the command an agent gets when its stream opens, and the end of the wait.
 * The wait itself (boot, deadline, restart, abort) is this flow's.
 */
export interface DeployWaitHandler {
  commandFor(n: NodeRecord): Promise<Command | undefined>;
  result(n: NodeRecord, r: { commandId: string; status: 'succeeded' | 'failed'; message: string }): Promise<void>;
  progress?(n: NodeRecord, percent: number, message: string): void;
  /** The wait ended without success (timeout, abort, failure): what the deploy issued must go. */
  ended(n: NodeRecord): Promise<void>;
}

export interface InspectionDeps {
  db: Database;
  registry: NodeRegistry;
  states: ProvisionStates;
  power: PowerPort;
  tokens: AgentTokens;
  inventory: InventoryStore;
  process: InventoryProcessor;
  bootHistory?: BootHistory;
  /** Why machines may not reach the advertised address, told in a timeout's explanation. */
  advertiseProblems?: () => string[];
  channel: CommandChannel;
  options: InspectionOptions;
  log: Logger;
}

/** The waits this flow owns and arms deadlines for; what `wait call-back` does is the deploy handler's. */
export type FlowWaitState = Extract<ProvisionState, 'inspect wait' | 'clean wait' | 'wait call-back'>;
const FLOW_WAIT_STATES: readonly FlowWaitState[] = ['inspect wait', 'clean wait', 'wait call-back'];
/** Work that lived in this process only: after a restart nobody finishes it. */
const NON_RESUMABLE: readonly ProvisionState[] = ['inspecting', 'cleaning', 'deploying'];
export const RESTART_MESSAGE = 'ospd restarted mid-operation';
// Per-node override of the wait timeout, as a capability (driver_info keys are per driver and checked strictly).
const TIMEOUT_CAPABILITY: Record<FlowWaitState, string> = { 'inspect wait': 'inspect_wait_timeout_ms', 'clean wait': 'clean_wait_timeout_ms', 'wait call-back': 'deploy_wait_timeout_ms' };

/**
 * Inspection and cleaning: drives a node through inspecting/cleaning and
 * their wait states, hands the ramdisk its commands, and finishes or fails
 * the wait when the agent reports or the stored deadline passes.
 */
export class InspectionFlow {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly work = new Set<Promise<unknown>>();
  private readonly settleWaiters = new Map<string, Set<(n: NodeRecord) => void>>();
  private stopped = true;
  private deployHandler?: DeployWaitHandler;

  constructor(private readonly d: InspectionDeps) {}

  /** Plugs the deploy flow into `wait call-back` (set once, before start). */
  handleDeploys(h: DeployWaitHandler): void {
    this.deployHandler = h;
  }

  async start(): Promise<void> {
    this.stopped = false;
    for (const state of NON_RESUMABLE) {
      for (const n of await nodeStore.list(this.d.db, { provisionState: state, limit: 100_000 })) {
        await this.transition(n.uuid, 'fail', 'server', RESTART_MESSAGE);
      }
    }
    for (const state of FLOW_WAIT_STATES) {
      for (const n of await nodeStore.list(this.d.db, { provisionState: state, limit: 100_000 })) {
        const w = await currentWait(this.d.db, n.uuid, state);
        if (w) this.arm(n.uuid, w);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.d.channel.closeAll();
    await Promise.allSettled([...this.work]);
  }

  track<T>(p: Promise<T>): Promise<T> {
    this.work.add(p);
    void p.finally(() => this.work.delete(p)).catch(() => undefined);
    return p;
  }

  /** One state-table step; wakes anyone waiting for the node to settle. */
  async transition(id: string, t: Transition, actor: string, lastError?: string, data?: Record<string, unknown>): Promise<NodeRecord> {
    const n = await this.d.states.apply(id, t, actor, { lastError, data });
    for (const fn of [...(this.settleWaiters.get(n.uuid) ?? [])]) fn(n);
    return n;
  }

  /** manageable/inspect failed → inspecting → (PXE once, power on) → inspect wait. */
  async inspect(id: string, actor: string): Promise<NodeRecord> {
    const n = await this.transition((await this.d.registry.get(id)).uuid, 'inspect', actor);
    void this.track(this.bootIntoRamdisk(n, 'inspect wait', actor));
    return n;
  }

  /** manageable → cleaning → (PXE once, power on) → clean wait; the agent wipes metadata → available. */
  async provide(id: string, actor: string): Promise<NodeRecord> {
    const n = await this.transition((await this.d.registry.get(id)).uuid, 'provide', actor);
    void this.track(this.bootIntoRamdisk(n, 'clean wait', actor));
    return n;
  }

  async abort(id: string, actor: string): Promise<NodeRecord> {
    const cur = await this.d.registry.get(id);
    const n = await this.transition(cur.uuid, 'abort', actor, `aborted by ${actor} in '${cur.provisionState}'`);
    await this.finish(n, actor, true);
    return n;
  }

  /** PXE once, power on (or reboot), then the wait state with its stored deadline; failures fail the node. */
  async bootIntoRamdisk(n: NodeRecord, wait: FlowWaitState, actor: string): Promise<void> {
    let step = 'set one-time boot to PXE';
    try {
      await this.d.power.setBootDevice(n.uuid, { device: 'pxe', persistent: false }, actor);
      step = 'power on';
      // A machine already on must restart to reach PXE.
      await this.d.power.setPower(n.uuid, n.powerState === 'on' ? 'reboot' : 'on', true, actor);
    } catch (e) {
      await this.transition(n.uuid, 'fail', actor, `${step} failed: ${(e as Error).message}`).catch((err: Error) => this.d.log.warn({ node: n.name, err: err.message }, 'could not record failure'));
      return;
    }
    const timeoutMs = this.timeoutFor(n, wait);
    const deadline = new Date(Date.now() + timeoutMs).toISOString();
    const after = await this.transition(n.uuid, 'wait', actor, undefined, { deadline, timeoutMs });
    const w = await currentWait(this.d.db, after.uuid, wait);
    if (w) this.arm(after.uuid, w);
  }

  private timeoutFor(n: NodeRecord, wait: FlowWaitState): number {
    const raw = n.capabilities[TIMEOUT_CAPABILITY[wait]];
    const v = raw === undefined ? NaN : Number(raw);
    if (Number.isInteger(v) && v > 0) return v;
    if (raw !== undefined) this.d.log.warn({ node: n.name, capability: TIMEOUT_CAPABILITY[wait], value: raw }, 'ignoring per-node timeout: expected a positive whole number of milliseconds');
    if (wait === 'wait call-back') return this.d.options.deployWaitTimeoutMs ?? this.d.options.cleanWaitTimeoutMs;
    return wait === 'inspect wait' ? this.d.options.inspectWaitTimeoutMs : this.d.options.cleanWaitTimeoutMs;
  }

  private arm(uuid: string, w: WaitEntry): void {
    if (this.stopped) return;
    const old = this.timers.get(uuid);
    if (old) clearTimeout(old);
    // setTimeout holds 32-bit delays only; longer waits re-arm on the way.
    const delayMs = Math.min(Math.max(0, w.deadlineMs - Date.now()), 2 ** 31 - 1);
    const t = setTimeout(() => {
      this.timers.delete(uuid);
      if (Date.now() < w.deadlineMs) return this.arm(uuid, w);
      void this.track(this.timeout(uuid, w)).catch((e: Error) => this.d.log.error({ uuid, err: e.message }, 'wait timeout handling failed'));
    }, delayMs);
    t.unref();
    this.timers.set(uuid, t);
  }

  private async timeout(uuid: string, w: WaitEntry): Promise<void> {
    const n = await this.d.registry.get(uuid);
    const cur = await currentWait(this.d.db, uuid, w.state);
    if (n.provisionState !== w.state || cur?.eventId !== w.eventId) return;
    const facts = await waitFacts(this.d.db, uuid, w.eventId);
    const boot = await this.d.bootHistory?.stepsSince(n.ports, w.startedAt).catch(() => undefined);
    const message = explainTimeout({ waitState: w.state as FlowWaitState, timeoutMs: w.timeoutMs || w.deadlineMs - Date.parse(w.startedAt), macs: n.ports, facts, boot, advertiseProblems: this.d.advertiseProblems?.() });
    const failed = await this.transition(uuid, 'fail', 'server', message, { reason: 'timeout', facts });
    this.d.log.warn({ node: n.name, state: w.state, reason: message }, 'wait timed out');
    await this.finish(failed, 'server', true);
  }

  /** Ends the wait's timer and the ramdisk's stream, leaving power and tokens alone (a deploy boots the node into its disk next). */
  closeRamdisk(uuid: string): void {
    const t = this.timers.get(uuid);
    if (t) clearTimeout(t);
    this.timers.delete(uuid);
    this.d.channel.close(uuid);
  }

  /** Ends the node's ramdisk session: timer, token, stream; optionally powers it off. */
  async finish(n: NodeRecord, actor: string, powerOff: boolean): Promise<void> {
    if (this.d.channel.isConnected(n.uuid)) this.d.channel.send(n.uuid, CommandChannel.make('power_off'));
    await this.d.tokens.revokeToken(n.uuid, actor);
    this.closeRamdisk(n.uuid);
    if (n.provisionState === 'deploy failed') await this.deployHandler?.ended(n);
    if (powerOff) {
      await this.d.power.setPower(n.uuid, 'off', true, actor).catch((e: Error) => this.d.log.warn({ node: n.name, err: e.message }, 'power off after the ramdisk failed'));
    }
  }

  /** The command an agent gets when its stream opens, from the node's state. */
  async streamOpened(uuid: string): Promise<Command | undefined> {
    const n = await this.d.registry.get(uuid);
    await nodeStore.appendEvent(this.d.db, { nodeUuid: uuid, type: RAMDISK_EVENT.stream, actor: 'agent', message: `ramdisk command stream opened in '${n.provisionState}'` });
    if (n.provisionState === 'inspect wait' || n.provisionState === 'enroll') return CommandChannel.make('inspect');
    if (n.provisionState === 'clean wait') return CommandChannel.make('clean', 'metadata');
    if (n.provisionState === 'wait call-back') return this.deployHandler?.commandFor(n);
    return undefined;
  }

  /** The inspect result: store, process (derive properties, rules), power off, → manageable. */
  async inventoryReceived(uuid: string, inventory: Record<string, unknown>): Promise<NodeRecord> {
    const n = await this.d.registry.get(uuid);
    if (n.provisionState !== 'inspect wait' && n.provisionState !== 'enroll') {
      throw new OspError('NODE_STATE_INVALID', `node ${n.name} is '${n.provisionState}': it is not waiting for an inventory`, { node: n.name, state: n.provisionState });
    }
    await this.d.inventory.saveFacts(n.name, inventory);
    await nodeStore.appendEvent(this.d.db, { nodeUuid: uuid, type: RAMDISK_EVENT.inventory, actor: 'agent', message: 'inventory received', data: { schema: inventory.schema ?? null } });
    let failure: string | undefined;
    try {
      failure = (await this.d.process(uuid, inventory)).failure;
    } catch (e) {
      failure = (e as Error).message;
    }
    if (failure && n.provisionState === 'inspect wait') {
      const failed = await this.transition(uuid, 'fail', 'server', `processing the inventory failed: ${failure}`);
      await this.finish(failed, 'server', true);
      return failed;
    }
    if (failure) this.d.log.warn({ node: n.name, failure }, 'discovered machine: processing its inventory failed');
    // A discovered machine has no usable BMC credentials yet: the agent powers it off.
    if (n.provisionState === 'enroll') {
      await this.finish(n, 'server', false);
      return this.d.registry.get(uuid);
    }
    await this.finish(n, 'server', true);
    return this.transition(uuid, 'done', 'server');
  }

  /** Progress and results of commands; a clean result ends the clean wait. */
  async commandResult(uuid: string, r: { commandId: string; status: string; message: string; percent: number }): Promise<void> {
    const n = await this.d.registry.get(uuid);
    if (r.status === 'running') {
      await nodeStore.appendEvent(this.d.db, { nodeUuid: uuid, type: RAMDISK_EVENT.progress, actor: 'agent', message: `${r.percent}% ${r.message}`.slice(0, 500), data: { command: r.commandId, percent: r.percent } });
      if (n.provisionState === 'wait call-back') this.deployHandler?.progress?.(n, r.percent, r.message);
      return;
    }
    if (r.status !== 'succeeded' && r.status !== 'failed') {
      throw new OspError('INVALID_ARGUMENT', `status: ${JSON.stringify(r.status)}: expected running, succeeded or failed`, { field: 'status' });
    }
    await nodeStore.appendEvent(this.d.db, { nodeUuid: uuid, type: RAMDISK_EVENT.progress, actor: 'agent', message: `command ${r.status}: ${r.message}`.slice(0, 500), data: { command: r.commandId, status: r.status } });
    if (!FLOW_WAIT_STATES.includes(n.provisionState as FlowWaitState)) return;
    if (n.provisionState === 'wait call-back') {
      await this.deployHandler?.result(n, { commandId: r.commandId, status: r.status, message: r.message });
      return;
    }
    if (r.status === 'failed') {
      const what = n.provisionState === 'clean wait' ? 'cleaning' : 'inspection';
      const failed = await this.transition(uuid, 'fail', 'agent', `${what} failed in the ramdisk: ${r.message}`);
      await this.finish(failed, 'server', true);
      return;
    }
    if (n.provisionState === 'clean wait') {
      await this.finish(n, 'server', true);
      await this.transition(uuid, 'done', 'server');
    }
  }

  /** Resolves when the node leaves the given states (or at the bound, with its state then). */
  async settled(uuid: string, busy: readonly ProvisionState[], boundMs: number): Promise<NodeRecord> {
    const cur = await this.d.registry.get(uuid);
    if (!busy.includes(cur.provisionState)) return cur;
    return new Promise((resolve) => {
      let set = this.settleWaiters.get(uuid);
      if (!set) this.settleWaiters.set(uuid, (set = new Set()));
      const done = (n: NodeRecord) => {
        clearTimeout(timer);
        set!.delete(check);
        if (set!.size === 0) this.settleWaiters.delete(uuid);
        resolve(n);
      };
      const check = (n: NodeRecord) => { if (!busy.includes(n.provisionState)) done(n); };
      const timer = setTimeout(() => void this.d.registry.get(uuid).then(done, () => done(cur)), boundMs);
      set.add(check);
    });
  }

  /** The longest a node may stay in a wait state, plus room for the BMC: the bound for batch waits. */
  waitBoundMs(): number {
    return Math.max(this.d.options.inspectWaitTimeoutMs, this.d.options.cleanWaitTimeoutMs, this.d.options.deployWaitTimeoutMs ?? 0) + 5 * 60_000;
  }
}
