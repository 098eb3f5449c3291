import { OspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import type { BootDeviceRequest } from '../bmc/types.js';
import type { NodeRecord, ProvisionState } from '../nodes/model.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { ProvisionStates } from '../nodes/provision.js';
import type { Transition } from '../nodes/states.js';
import type { NodeEventSink } from '../nodes/live-events.js';
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
  /** Keep a ramdisk that finished for the next operation (node capability fast_track overrides). */
  fastTrack?: boolean;
  /** How long a kept ramdisk waits for that operation before it is powered off. */
  fastTrackTimeoutMs?: number;
}

/**
 * The deploy's part of `wait call-back` (server/provision/deploy-flow.ts):
 * the command an agent gets when its stream opens, and the end of the wait.
 * The wait itself (boot, deadline, restart, abort) is this flow's.
 */
export interface DeployWaitHandler {
  commandFor(n: NodeRecord): Promise<Command | undefined>;
  result(n: NodeRecord, r: { commandId: string; status: 'succeeded' | 'failed'; message: string }): Promise<void>;
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
  /** The live feed on MQTT (state changes go there from ProvisionStates; progress from here). */
  events?: NodeEventSink;
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
const FAST_TRACK_CAPABILITY = 'fast_track';
/** Where a ramdisk waits for its next operation under fast track (after inspection, after cleaning). */
const IDLE_STATES: readonly ProvisionState[] = ['manageable', 'available'];
const DEFAULT_FAST_TRACK_TIMEOUT_MS = 5 * 60_000;
const COMMAND_STEP: Record<string, string> = { inspect: 'collect the inventory', clean: 'wipe disk metadata', deploy: 'write image' };

/**
 * Inspection and cleaning: drives a node through inspecting/cleaning and
 * their wait states, hands the ramdisk its commands, and finishes or fails
 * the wait when the agent reports or the stored deadline passes.
 */
export class InspectionFlow {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Fast track: ramdisks kept up after their work, each with the timer that powers it off unused. */
  private readonly kept = new Map<string, NodeJS.Timeout>();
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
    for (const t of [...this.timers.values(), ...this.kept.values()]) clearTimeout(t);
    this.timers.clear();
    this.kept.clear();
    this.d.channel.closeAll();
    await Promise.allSettled([...this.work]);
  }

  track<T>(p: Promise<T>): Promise<T> {
    this.work.add(p);
    void p.finally(() => this.work.delete(p)).catch(() => undefined);
    return p;
  }

  /** One state-table step; wakes anyone waiting for the node to settle. */
  async transition(id: string, t: Transition, actor: string, lastError?: string, data?: Record<string, unknown>, step?: string): Promise<NodeRecord> {
    const n = await this.d.states.apply(id, t, actor, { lastError, data, step });
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
    if (this.unkeep(n.uuid) && this.d.channel.isConnected(n.uuid)) return this.fastTrack(n, wait, actor);
    let step = 'set one-time boot to PXE';
    await this.setStep(n.uuid, 'set one-time PXE boot and power on');
    try {
      await this.d.power.setBootDevice(n.uuid, { device: 'pxe', persistent: false }, actor);
      step = 'power on';
      // A machine already on must restart to reach PXE.
      await this.d.power.setPower(n.uuid, n.powerState === 'on' ? 'reboot' : 'on', true, actor);
    } catch (e) {
      await this.transition(n.uuid, 'fail', actor, `${step} failed: ${(e as Error).message}`).catch((err: Error) => this.d.log.warn({ node: n.name, err: err.message }, 'could not record failure'));
      return;
    }
    await this.enterWait(n, wait, actor, false);
  }

  /** The wait state with its stored deadline and timer. */
  private async enterWait(n: NodeRecord, wait: FlowWaitState, actor: string, fastTrack: boolean): Promise<NodeRecord> {
    const timeoutMs = this.timeoutFor(n, wait);
    const deadline = new Date(Date.now() + timeoutMs).toISOString();
    const after = await this.transition(n.uuid, 'wait', actor, undefined, { deadline, timeoutMs, ...(fastTrack ? { fastTrack: true } : {}) });
    await this.setStep(after.uuid, fastTrack ? 'fast track: the ramdisk is still connected' : 'wait for the ramdisk to boot and call back');
    const w = await currentWait(this.d.db, after.uuid, wait);
    if (w) this.arm(after.uuid, w);
    return after;
  }

  /** No PXE, no power cycle: the kept ramdisk gets the wait's command on the stream it holds open. */
  private async fastTrack(n: NodeRecord, wait: FlowWaitState, actor: string): Promise<void> {
    this.d.log.info({ node: n.name, wait }, 'fast track: the ramdisk agent is still connected');
    const after = await this.enterWait(n, wait, actor, true);
    const c = await this.commandForState(after);
    if (c) this.d.channel.send(after.uuid, c);
  }

  private fastTrackOn(n: NodeRecord): boolean {
    const v = n.capabilities[FAST_TRACK_CAPABILITY];
    if (v === 'true' || v === 'false') return v === 'true';
    if (v !== undefined) this.d.log.warn({ node: n.name, capability: FAST_TRACK_CAPABILITY, value: v }, 'ignoring capability: expected true or false');
    return this.d.options.fastTrack ?? false;
  }

  /**
   * After inspection or cleaning succeeded: with fast track the ramdisk stays
   * up (stream, token, power) until the next operation takes it or
   * fast-track-timeout-ms passes; otherwise its session ends, powered off.
   */
  private async release(n: NodeRecord): Promise<void> {
    if (!this.fastTrackOn(n) || !this.d.channel.isConnected(n.uuid)) return this.finish(n, 'server', true);
    this.clearWaitTimer(n.uuid);
    this.keep(n.uuid);
  }

  /** The step a node shows after its ramdisk's work is done. */
  private keptStep(uuid: string): string {
    return this.kept.has(uuid) ? 'fast track: ramdisk kept running for the next operation' : '';
  }

  private keep(uuid: string): void {
    this.unkeep(uuid);
    const t = setTimeout(() => {
      this.kept.delete(uuid);
      void this.track(this.expireKept(uuid)).catch((e: Error) => this.d.log.error({ uuid, err: e.message }, 'ending a fast-track ramdisk failed'));
    }, this.d.options.fastTrackTimeoutMs ?? DEFAULT_FAST_TRACK_TIMEOUT_MS);
    t.unref();
    this.kept.set(uuid, t);
  }

  /** Forgets the node's kept ramdisk timer; true if there was one. */
  private unkeep(uuid: string): boolean {
    const t = this.kept.get(uuid);
    if (t) clearTimeout(t);
    return this.kept.delete(uuid);
  }

  private async expireKept(uuid: string): Promise<void> {
    const n = await this.d.registry.get(uuid);
    // Taken by an operation meanwhile: that flow owns the session now.
    if (FLOW_WAIT_STATES.includes(n.provisionState as FlowWaitState)) return;
    this.d.log.info({ node: n.name }, 'fast track: nobody used the ramdisk in time; powering it off');
    await this.setStep(uuid, '');
    await this.finish(n, 'server', true);
  }

  private async setStep(uuid: string, step: string): Promise<void> {
    await nodeStore.setCurrentStep(this.d.db, uuid, step);
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
    this.clearWaitTimer(uuid);
    this.unkeep(uuid);
    this.d.channel.close(uuid);
  }

  private clearWaitTimer(uuid: string): void {
    const t = this.timers.get(uuid);
    if (t) clearTimeout(t);
    this.timers.delete(uuid);
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
    const c = await this.commandForState(n);
    // A kept ramdisk reconnecting after an ospd restart lost its timer gets a fresh one (or, with
    // fast track now off, is powered off): never an unbounded stay with a live token.
    if (!c && IDLE_STATES.includes(n.provisionState) && !this.kept.has(uuid)) {
      if (this.fastTrackOn(n)) this.keep(uuid);
      else void this.track(this.finish(n, 'server', true)).catch((e: Error) => this.d.log.warn({ node: n.name, err: e.message }, 'ending an idle ramdisk failed'));
    }
    return c;
  }

  private async commandForState(n: NodeRecord): Promise<Command | undefined> {
    let c: Command | undefined;
    if (n.provisionState === 'inspect wait' || n.provisionState === 'enroll') c = CommandChannel.make('inspect');
    else if (n.provisionState === 'clean wait') c = CommandChannel.make('clean', 'metadata');
    else if (n.provisionState === 'wait call-back') c = await this.deployHandler?.commandFor(n);
    if (c && n.provisionState !== 'enroll') await this.setStep(n.uuid, `${COMMAND_STEP[c.kind] ?? c.kind}: command sent to the ramdisk`);
    return c;
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
    await this.release(n);
    return this.transition(uuid, 'done', 'server', undefined, undefined, this.keptStep(uuid));
  }

  /** Progress and results of commands; a clean result ends the clean wait. */
  async commandResult(uuid: string, r: { commandId: string; status: string; message: string; percent: number }): Promise<void> {
    const n = await this.d.registry.get(uuid);
    if (r.status === 'running') {
      await nodeStore.appendEvent(this.d.db, { nodeUuid: uuid, type: RAMDISK_EVENT.progress, actor: 'agent', message: `${r.percent}% ${r.message}`.slice(0, 500), data: { command: r.commandId, percent: r.percent } });
      if (FLOW_WAIT_STATES.includes(n.provisionState as FlowWaitState)) {
        await this.setStep(uuid, `${r.percent}% ${r.message}`);
        this.d.events?.publish(n, { type: 'progress', state: n.provisionState, percent: r.percent, message: r.message, detail: { command: r.commandId } });
      }
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
      await this.release(n);
      await this.transition(uuid, 'done', 'server', undefined, undefined, this.keptStep(uuid));
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
