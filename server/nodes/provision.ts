import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import type { NodeRegistry } from './registry.js';
import type { NodeRecord } from './model.js';
import { nextState, type Transition } from './states.js';

export interface TransitionOptions {
  /** Written to last_error; a successful transition clears it unless given. */
  lastError?: string;
  /** Extra detail for the event row. */
  data?: Record<string, unknown>;
}

/** Applies the state table: each transition is one transaction with its event row. */
export class ProvisionStates {
  constructor(
    private readonly db: Database,
    private readonly registry: NodeRegistry,
    private readonly log: Logger,
  ) {}

  async apply(id: string, t: Transition, actor: string, opts: TransitionOptions = {}): Promise<NodeRecord> {
    const node = await this.db.transaction(async (tx) => {
      const cur = await this.registry.get(id, tx);
      const to = nextState(cur.name, cur.provisionState, t);
      const next: NodeRecord = { ...cur, provisionState: to, lastError: opts.lastError ?? '', updatedAt: new Date().toISOString() };
      await nodeStore.update(tx, next);
      await nodeStore.appendEvent(tx, {
        nodeUuid: cur.uuid, type: 'provision', actor,
        message: `${t}: ${cur.provisionState} → ${to}${opts.lastError ? `: ${opts.lastError}` : ''}`,
        data: { action: t, from: cur.provisionState, to, ...(opts.lastError ? { error: opts.lastError } : {}), ...opts.data },
      });
      return next;
    });
    this.log.info({ node: node.name, action: t, state: node.provisionState, actor }, 'provision state changed');
    return node;
  }
}
