import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../common/logging.js';
import { ResourceFailure, type ResourcePlugin, type StackRequest, type StackSummary, type StackPlan } from '../../server/orchestration/engine/contract.js';
import { StackEngine } from '../../server/orchestration/engine/engine.js';
import { SecretBox } from '../../server/security/secrets.js';
import { Database } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { waitFor } from '../harness/wait.js';
import { dedent } from './hot-helpers.js';

export interface TestDb { db: Database; dir: string; secrets: SecretBox; close(): Promise<void> }

export async function openTestDb(): Promise<TestDb> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-engine-'));
  const db = await Database.open(path.join(dir, 'ospd.sqlite'));
  await migrate(db);
  return { db, dir, secrets: SecretBox.fromKey(Buffer.alloc(32, 7)), close: async () => { await db.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** A gate a test opens when it wants a resource to go on. */
export class Gates {
  private readonly gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  get(name: string): Promise<void> {
    if (!this.gates.has(name)) { let open!: () => void; const promise = new Promise<void>((r) => { open = r; }); this.gates.set(name, { promise, open }); }
    return this.gates.get(name)!.promise;
  }
  open(name: string): void { void this.get(name); this.gates.get(name)!.open(); }
}

export interface Call { op: 'create' | 'ready' | 'update' | 'delete'; name: string; stack: string; props?: Record<string, unknown> }

/**
 * Test::Thing: records every call, counts how many run at once; properties
 * `gate` (wait for the test to open it), `fail` (create throws with that
 * reason), `readyGate` (ready waits), `immutable` (a change replaces). Attribute `out` is `input`.
 */
export function thingPlugin(gates = new Gates()): ResourcePlugin & { calls: Call[]; maxRunning: number; gates: Gates; running: number } {
  const wait = (p: Promise<void>, signal: AbortSignal) => new Promise<void>((resolveP, reject) => {
    if (signal.aborted) { reject(signal.reason); return; }
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    void p.then(resolveP);
  });
  const plugin = {
    type: 'Test::Thing',
    attributes: ['out', 'name'],
    replaceOn: ['immutable'],
    calls: [] as Call[],
    running: 0,
    maxRunning: 0,
    gates,
    validate(p: Record<string, unknown>) { return p.bad ? [`property 'bad': ${JSON.stringify(p.bad)}: expected nothing`] : []; },
    async create(ctx: Parameters<ResourcePlugin['create']>[0], p: Record<string, unknown>) {
      plugin.calls.push({ op: 'create', name: ctx.name, stack: ctx.stack.path, props: p });
      plugin.running++; plugin.maxRunning = Math.max(plugin.maxRunning, plugin.running);
      try {
        if (typeof p.gate === 'string') await wait(gates.get(p.gate), ctx.signal);
        else await new Promise((r) => setTimeout(r, 5));
        if (p.fail) throw new ResourceFailure(String(p.fail), { statusCode: 2, stderrTail: 'boom', node: 'node-1', config: 'cfg' });
      } finally { plugin.running--; }
      return { id: `${ctx.stack.path}/${ctx.name}`, input: p.input ?? null, generation: 1, readyGate: p.readyGate ?? null };
    },
    async ready(ctx: Parameters<ResourcePlugin['create']>[0], data: Record<string, unknown>) {
      plugin.calls.push({ op: 'ready', name: ctx.name, stack: ctx.stack.path });
      if (typeof data.readyGate === 'string') await wait(gates.get(data.readyGate), ctx.signal);
      return data;
    },
    async update(ctx: Parameters<ResourcePlugin['create']>[0], data: Record<string, unknown>, p: Record<string, unknown>) {
      plugin.calls.push({ op: 'update', name: ctx.name, stack: ctx.stack.path, props: p });
      return { ...data, input: p.input ?? null, generation: Number(data.generation) + 1 };
    },
    async delete(ctx: Parameters<ResourcePlugin['create']>[0]) {
      plugin.calls.push({ op: 'delete', name: ctx.name, stack: ctx.stack.path });
      if (ctx.name.startsWith('undeletable')) throw new ResourceFailure('cannot delete');
    },
    reference: (d: Record<string, unknown>) => String(d.id),
    attribute: (d: Record<string, unknown>, n: string) => (n === 'out' ? d.input : n === 'name' ? d.id : undefined),
  };
  return plugin;
}

export function engineWith(t: TestDb, plugins: ResourcePlugin[], opts: { concurrency?: number; defaultTimeoutMins?: number } = {}): StackEngine {
  return new StackEngine({ db: t.db, secrets: t.secrets, plugins, log: silentLogger(), ...opts });
}

export function request(name: string, files: Record<string, string>, extra: Partial<StackRequest> = {}): StackRequest {
  return { name, files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, dedent(v)])), template: 'top.yaml', environments: [], parameters: {}, actor: 'test', ...extra };
}

export const isPlan = (r: StackSummary | StackPlan): r is StackPlan => 'unchanged' in r;

/** Waits until the stack's status is no longer IN_PROGRESS (or gone); returns the final status. */
export async function settle(engine: StackEngine, name: string, timeoutMs = 10_000): Promise<string> {
  return waitFor(`stack ${name} to settle`, async () => {
    const s = (await engine.list({})).stacks.find((x) => x.name === name);
    if (!s) return 'GONE';
    return s.status.endsWith('_IN_PROGRESS') ? undefined : s.status;
  }, { timeoutMs, intervalMs: 10 });
}

/** Waits until `cond` holds. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  await waitFor('a test condition', cond, { timeoutMs, intervalMs: 5 });
}
