import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { JsonCache } from '../../agent/collect/cache.js';
import { Deployer } from '../../agent/deploy/deployer.js';
import { silentLogger } from '../../common/logging.js';
import { NodeConfigs } from '../../server/agents/configs.js';
import type { NodeRecord } from '../../server/nodes/model.js';
import { NodeRegistry } from '../../server/nodes/registry.js';
import type { ResourceContext, ResourcePlugin } from '../../server/orchestration/engine/contract.js';
import { softwarePlugins } from '../../server/orchestration/resources/software-deployment.js';
import { SecretBox } from '../../server/security/secrets.js';
import type { AckRow } from '../../server/store/configs.js';
import { Database } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';

/**
 * Plays a node's osp-agent for deployments: the real Deployer (as the agent
 * runs it) over the node's latest revision, acknowledged through
 * NodeConfigs.ack with the fields the agent's transport sends. Hooks and
 * apply-config templating are not run: deployments are what these tests are about.
 */
export class DeployingAgent {
  private readonly deployer: Deployer;
  private queue = Promise.resolve();
  runs = 0;

  constructor(private readonly configs: NodeConfigs, readonly node: NodeRecord, readonly dir: string) {
    this.deployer = new Deployer({ deploymentsDir: path.join(dir, 'deployments'), cache: new JsonCache(path.join(dir, 'cache')), scriptTimeoutMs: 20_000 });
  }

  /** Applies each revision as it commits, one run at a time, as the agent's runner does. */
  follow(): () => void {
    return this.configs.subscribe(this.node.uuid, () => {
      this.queue = this.queue.then(() => this.applyLatest().then(() => undefined));
    });
  }

  async applyLatest(): Promise<AckRow> {
    const { rev } = await this.configs.get(this.node.uuid);
    if (!rev) throw new Error(`node ${this.node.name} has no revision`);
    this.runs++;
    const results = await this.deployer.run(rev.deployments, { PATH: process.env.PATH });
    const ack: AckRow = {
      revision: rev.revision,
      status: results.every((r) => r.status === 'succeeded') ? 'succeeded' : 'failed',
      configHash: rev.contentHash,
      result: { phases: [], deployments: results.map((d) => ({ ...d, durationMs: Math.round(d.durationMs) })) },
      receivedAt: new Date().toISOString(),
    };
    await this.configs.ack(this.node, ack);
    return ack;
  }

  idle(): Promise<void> {
    return this.queue;
  }
}

export interface World {
  dir: string;
  db: Database;
  registry: NodeRegistry;
  configs: NodeConfigs;
  nodes: NodeRecord[];
  plugins: Map<string, ResourcePlugin>;
  agents: DeployingAgent[];
  /** A second plug-in set over the same store: what a restarted ospd has. */
  freshPlugins(): Map<string, ResourcePlugin>;
  close(): Promise<void>;
}

export async function world(nodeCount = 1): Promise<World> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'osp-software-'));
  const log = silentLogger();
  const db = await Database.open(path.join(dir, 'ospd.sqlite'));
  await migrate(db);
  const registry = new NodeRegistry(db, SecretBox.fromKey(randomBytes(32)), log);
  const configs = new NodeConfigs(db, registry, log);
  const nodes: NodeRecord[] = [];
  for (let n = 1; n <= nodeCount; n++) {
    nodes.push(await registry.create({ name: `n${n}`, driver: 'fake', driverInfo: {}, properties: {}, capabilities: {}, rootDevice: {}, ports: [] }, 'test'));
  }
  const agents = nodes.map((node) => new DeployingAgent(configs, node, path.join(dir, 'agents', node.name)));
  const byType = () => new Map(softwarePlugins({ configs, db, log }).map((p) => [p.type, p]));
  return {
    dir, db, registry, configs, nodes, agents, plugins: byType(), freshPlugins: byType,
    async close() {
      await Promise.all(agents.map((a) => a.idle()));
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestContext extends ResourceContext {
  progressLines: string[];
  abort: AbortController;
}

export function context(name: string, over: Partial<ResourceContext> = {}): TestContext {
  const abort = new AbortController();
  const progressLines: string[] = [];
  return {
    stack: { id: '6f0c1d5e-0000-4000-8000-000000000001', name: 'overcloud', path: 'overcloud' },
    name, actor: 'test', signal: abort.signal, deadlineAt: Date.now() + 60_000, log: silentLogger(),
    progress: (r) => progressLines.push(r), progressLines, abort, ...over,
  };
}

/** Creates a resource as the engine does: create, (store), then ready. */
export async function createReady(p: ResourcePlugin, ctx: ResourceContext, props: Record<string, unknown>): Promise<Record<string, unknown>> {
  const data = await p.create(ctx, props);
  return p.ready ? p.ready(ctx, data) : data;
}
