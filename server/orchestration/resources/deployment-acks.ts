import type { NodeConfigs } from '../../agents/configs.js';
import type { Database } from '../../store/db.js';
import { configStore, type AckRow } from '../../store/configs.js';

/** One deployment's result as the agent reports it in an ack (agent/deploy/deployer.ts, through the proto). */
export interface AgentDeploymentResult {
  id: string;
  name: string;
  status: string;
  exitCode: number;
  stdoutTail: string;
  stderrTail: string;
  outputs: Record<string, string>;
}

export type Settled =
  | { kind: 'succeeded'; revision: number; result: AgentDeploymentResult }
  | { kind: 'failed'; revision: number; result: AgentDeploymentResult }
  /** A later ack covered the revision without running it: the agent had already run this content (its outputs from an earlier ack, when one is stored). */
  | { kind: 'already-ran'; revision: number; result?: AgentDeploymentResult };

type Judged = Settled | { kind: 'pending'; reason?: string };

export interface WaitTarget {
  nodeUuid: string;
  nodeName: string;
  deploymentId: string;
  /** The revision that holds this deployment's content: acks of older revisions say nothing about it. */
  revision: number;
}

function resultsOf(ack: AckRow): AgentDeploymentResult[] {
  const list = Array.isArray(ack.result?.deployments) ? (ack.result.deployments as Partial<AgentDeploymentResult>[]) : [];
  return list.map((d) => ({
    id: String(d.id ?? ''), name: String(d.name ?? ''), status: String(d.status ?? ''), exitCode: Number(d.exitCode ?? 0),
    stdoutTail: String(d.stdoutTail ?? ''), stderrTail: String(d.stderrTail ?? ''), outputs: { ...(d.outputs ?? {}) },
  }));
}

/** What one ack of a revision ≥ the target's says about the deployment. */
export function judge(ack: AckRow, deploymentId: string): Judged {
  const results = resultsOf(ack);
  const mine = results.find((d) => d.id === deploymentId);
  if (mine) return { kind: mine.status === 'succeeded' ? 'succeeded' : 'failed', revision: ack.revision, result: mine };
  // The agent runs deployments only after its hooks succeed; a failed run that ran none says nothing about
  // ours, and the agent retries it. Otherwise ours was skipped because this content had already run.
  if (ack.status !== 'succeeded' && results.length === 0) {
    const phases = Array.isArray(ack.result?.phases) ? (ack.result.phases as { name?: string; status?: string; exitCode?: number }[]) : [];
    const bad = phases.find((p) => p.status === 'failed') ?? phases.at(-1);
    return { kind: 'pending', reason: `revision ${ack.revision} failed before deployments ran${bad ? ` (phase ${bad.name}, exit ${bad.exitCode ?? '?'})` : ''}; the agent retries` };
  }
  return { kind: 'already-ran', revision: ack.revision };
}

/**
 * Waits for agents' acks of software deployments: stored acks first (a
 * restarted ospd re-observes instead of redoing), then each new ack as
 * NodeConfigs commits it, dispatched by node so a thousand waiters do not
 * each see every ack. No polling.
 */
export class AckWatch {
  private readonly waiters = new Map<string, Set<(ack: AckRow) => void>>();

  constructor(configs: NodeConfigs, private readonly db: Database) {
    configs.onAck((nodeUuid, ack) => {
      for (const fn of [...(this.waiters.get(nodeUuid) ?? [])]) fn(ack);
    });
  }

  /** Resolves with the deployment's outcome; rejects with `signal.reason` when aborted. `pending` hears why a run did not settle it. */
  async wait(t: WaitTarget, signal: AbortSignal, pending: (reason: string) => void = () => undefined): Promise<Settled> {
    signal.throwIfAborted();
    const settled = await new Promise<Settled>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        unlisten();
        signal.removeEventListener('abort', onAbort);
        f();
      };
      const onAbort = () => finish(() => reject(signal.reason));
      // Listen before reading the store, so an ack committed in between is not missed.
      const unlisten = this.listen(t.nodeUuid, (ack) => {
        if (ack.revision < t.revision) return;
        const j = judge(ack, t.deploymentId);
        if (j.kind === 'pending') pending(j.reason ?? '');
        else finish(() => resolve(j));
      });
      signal.addEventListener('abort', onAbort, { once: true });
      configStore.acksSince(this.db, t.nodeUuid, t.revision).then((acks) => {
        // Later acks supersede earlier ones (a failure the agent retried and then ran).
        const judged = acks.reverse().map((ack) => judge(ack, t.deploymentId));
        const decided = judged.find((j): j is Settled => j.kind !== 'pending');
        if (decided) finish(() => resolve(decided));
        else if (judged[0]?.kind === 'pending' && judged[0].reason) pending(judged[0].reason);
      }, (e: unknown) => finish(() => reject(e instanceof Error ? e : new Error(String(e)))));
    });
    if (settled.kind !== 'already-ran') return settled;
    return { ...settled, result: await this.earlierSuccess(t) };
  }

  /** The newest stored successful result of this deployment id: the outputs of the run whose content is still current. */
  private async earlierSuccess(t: WaitTarget): Promise<AgentDeploymentResult | undefined> {
    for (const ack of await configStore.acksMentioning(this.db, t.nodeUuid, t.deploymentId)) {
      const mine = resultsOf(ack).find((d) => d.id === t.deploymentId && d.status === 'succeeded');
      if (mine) return mine;
    }
    return undefined;
  }

  private listen(nodeUuid: string, fn: (ack: AckRow) => void): () => void {
    let set = this.waiters.get(nodeUuid);
    if (!set) this.waiters.set(nodeUuid, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.waiters.delete(nodeUuid);
    };
  }
}
