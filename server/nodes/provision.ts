import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import type { NodeRegistry } from './registry.js';
import type { NodeRecord, ProvisionState } from './model.js';
import { nextState, type Transition } from './states.js';

export interface TransitionOptions {
  /** Written to last_error; a successful transition clears it unless given. */
  lastError?: string;
  /** Extra detail for the event row. */
  data?: Record<string, unknown>;
  /** The node's current_step after the change; '' (idle) unless given. */
  step?: string;
}

/** One committed state change, as observers (the MQTT event publisher) see it. */
export interface StateChange {
  action: Transition;
  from: ProvisionState;
  to: ProvisionState;
  actor: string;
  lastError: string;
}
export type StateObserver = (n: NodeRecord, c: StateChange) => void;

/** Applies the state table: each transition is one transaction with its event row. */
export class ProvisionStates {
  private readonly observers = new Set<StateObserver>();

  constructor(
    private readonly db: Database,
    private readonly registry: NodeRegistry,
    private readonly log: Logger,
  ) {}

  /** Told of every change after it committed; an observer's failure never undoes or blocks one. */
  observe(fn: StateObserver): () => void {
    this.observers.add(fn);
    return () => this.observers.delete(fn);
  }

  async apply(id: string, t: Transition, actor: string, opts: TransitionOptions = {}): Promise<NodeRecord> {
    let from: ProvisionState = 'enroll';
    const node = await this.db.transaction(async (tx) => {
      const cur = await this.registry.get(id, tx);
      const to = nextState(cur.name, cur.provisionState, t);
      from = cur.provisionState;
      const next: NodeRecord = { ...cur, provisionState: to, lastError: opts.lastError ?? '', currentStep: opts.step ?? '', updatedAt: new Date().toISOString() };
      await nodeStore.update(tx, next);
      await nodeStore.appendEvent(tx, {
        nodeUuid: cur.uuid, type: 'provision', actor,
        message: `${t}: ${cur.provisionState} → ${to}${opts.lastError ? `: ${opts.lastError}` : ''}`,
        data: { action: t, from: cur.provisionState, to, ...(opts.lastError ? { error: opts.lastError } : {}), ...opts.data },
      });
      return next;
    });
    this.log.info({ node: node.name, action: t, state: node.provisionState, actor }, 'provision state changed');
    const change: StateChange = { action: t, from, to: node.provisionState, actor, lastError: node.lastError };
    for (const fn of this.observers) {
      try {
        fn(node, change);
      } catch (e) {
        this.log.warn({ node: node.name, err: (e as Error).message }, 'state observer failed');
      }
    }
    return node;
  }
}
