import type { Logger } from '../../common/logging.js';
import type { NodeRecord } from '../nodes/model.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { InspectionFlow } from './flow.js';

export const DEFAULT_BATCH_CONCURRENCY = 4;
const MAX_BATCH_CONCURRENCY = 64;

/**
 * `introspect --all-manageable [--provide]`: every manageable node, at most
 * `concurrency` booting at once (each holds a BMC, a DHCP lease and a
 * ramdisk download), optionally provided once inspection leaves it manageable.
 */
export class IntrospectBatch {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly flow: InspectionFlow, private readonly registry: NodeRegistry, private readonly log: Logger) {}

  async start(opts: { provide: boolean; concurrency: number }, actor: string): Promise<NodeRecord[]> {
    const nodes = (await this.registry.list({ provisionState: 'manageable', limit: 5000 })).nodes;
    const width = Math.min(Math.max(1, opts.concurrency || DEFAULT_BATCH_CONCURRENCY), MAX_BATCH_CONCURRENCY);
    const queue = [...nodes];
    const worker = async () => {
      for (let n = queue.shift(); n; n = queue.shift()) await this.one(n, opts.provide, actor);
    };
    const all = Promise.all(Array.from({ length: Math.min(width, queue.length) }, worker)).then(() => {
      this.log.info({ nodes: nodes.length, provide: opts.provide }, 'introspection batch finished');
    });
    this.running.add(all);
    void all.finally(() => this.running.delete(all));
    return nodes;
  }

  private async one(n: NodeRecord, provide: boolean, actor: string): Promise<void> {
    try {
      await this.flow.inspect(n.uuid, actor);
      const after = await this.flow.settled(n.uuid, ['inspecting', 'inspect wait'], this.flow.waitBoundMs());
      if (!provide || after.provisionState !== 'manageable') return;
      await this.flow.provide(n.uuid, actor);
      await this.flow.settled(n.uuid, ['cleaning', 'clean wait'], this.flow.waitBoundMs());
    } catch (e) {
      this.log.warn({ node: n.name, err: (e as Error).message }, 'batch introspection of one node failed');
    }
  }

  /** Batches stop waiting when the flow stops (its settle bounds still apply). */
  async stop(): Promise<void> {
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
