import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../common/logging.js';
import { writeFileAtomic } from '../../common/files.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { NodeEventSink } from '../nodes/live-events.js';
import type { Service } from '../lifecycle.js';

export const BOOT_EVENT = { connected: 'deploy-boot', timeout: 'deploy-boot-timeout' } as const;
const SUFFIX = '.boot.json';

interface Watch {
  deadlineMs: number;
  sinceMs: number;
}

export interface BootWatchDeps {
  db: Database;
  registry: NodeRegistry;
  /** Kept beside the pending deploys, so a restarted ospd goes on watching. */
  dir: string;
  timeoutMs: number;
  /** NodeConfigs: every call a node token authenticated; after a deploy only the new system holds one. */
  agentAuth: { onAuthenticated(fn: (nodeUuid: string) => void): () => void };
  events?: NodeEventSink;
  log: Logger;
}

/**
 * After a deploy's reboot: the deployed system's agent should connect with
 * the token from its config drive. If it has not within
 * deploy-boot-timeout-ms the node stays `active` (the image is written, as
 * Ironic leaves it) and gets a warning event saying so; either way
 * `ospctl node show` has the step until then.
 */
export class DeployBootWatch implements Service {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly endObservers = new Set<(uuid: string) => void>();
  private unsubscribe?: () => void;

  constructor(private readonly d: BootWatchDeps) {}

  async start(): Promise<void> {
    this.unsubscribe = this.d.agentAuth.onAuthenticated((uuid) => {
      if (this.timers.has(uuid)) void this.end(uuid, 'connected').catch((e: Error) => this.d.log.warn({ uuid, err: e.message }, 'boot watch: recording the connection failed'));
    });
    let files: string[];
    try {
      files = (await readdir(this.d.dir)).filter((f) => f.endsWith(SUFFIX));
    } catch {
      return;
    }
    for (const f of files) {
      const uuid = f.slice(0, -SUFFIX.length);
      try {
        this.arm(uuid, JSON.parse(await readFile(path.join(this.d.dir, f), 'utf8')) as Watch);
      } catch (e) {
        this.d.log.warn({ file: f, err: (e as Error).message }, 'boot watch: unreadable record dropped');
        await rm(path.join(this.d.dir, f), { force: true });
      }
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /**
   * The node was just rebooted into its disk: the watch is on disk and armed,
   * and the returned step goes into the transition to `active` (one write, so
   * nobody sees `active` without it).
   */
  async watch(uuid: string): Promise<string> {
    const w: Watch = { sinceMs: Date.now(), deadlineMs: Date.now() + this.d.timeoutMs };
    await mkdir(this.d.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.file(uuid), JSON.stringify(w), 0o600);
    this.arm(uuid, w);
    return `wait for the deployed system's agent to connect (until ${new Date(w.deadlineMs).toISOString()})`;
  }

  /** Told when a watch ends, after its event row is written (OS::Osp::Server waits on it instead of reading the store in a loop). */
  onEnded(fn: (uuid: string) => void): () => void {
    this.endObservers.add(fn);
    return () => this.endObservers.delete(fn);
  }

  private told(uuid: string): void {
    for (const fn of this.endObservers) {
      try {
        fn(uuid);
      } catch (e) {
        this.d.log.warn({ uuid, err: (e as Error).message }, 'boot watch: an observer failed');
      }
    }
  }

  /** Undeploy or rebuild: the watch no longer applies. */
  async cancel(uuid: string): Promise<void> {
    const t = this.timers.get(uuid);
    if (t) clearTimeout(t);
    this.timers.delete(uuid);
    await rm(this.file(uuid), { force: true });
  }

  private file(uuid: string): string {
    return path.join(this.d.dir, `${uuid}${SUFFIX}`);
  }

  private arm(uuid: string, w: Watch): void {
    const old = this.timers.get(uuid);
    if (old) clearTimeout(old);
    const t = setTimeout(() => void this.end(uuid, 'timeout', w).catch((e: Error) => this.d.log.warn({ uuid, err: e.message }, 'boot watch: recording the timeout failed')),
      Math.min(Math.max(0, w.deadlineMs - Date.now()), 2 ** 31 - 1));
    t.unref();
    this.timers.set(uuid, t);
  }

  private async end(uuid: string, how: 'connected' | 'timeout', w?: Watch): Promise<void> {
    // setTimeout caps at ~24.8 days; a longer timeout re-arms.
    if (how === 'timeout' && w && Date.now() < w.deadlineMs) return this.arm(uuid, w);
    const record = await readFile(this.file(uuid), 'utf8').then((t) => JSON.parse(t) as Watch, () => w);
    await this.cancel(uuid);
    const n = await this.d.registry.get(uuid).catch(() => undefined);
    if (!n || n.provisionState !== 'active') return;
    await nodeStore.setCurrentStep(this.d.db, uuid, '');
    const afterS = record ? Math.round((Date.now() - record.sinceMs) / 1000) : undefined;
    if (how === 'connected') {
      const message = `the deployed system's agent connected${afterS === undefined ? '' : ` ${afterS} s after the reboot`}`;
      await nodeStore.appendEvent(this.d.db, { nodeUuid: uuid, type: BOOT_EVENT.connected, actor: 'agent', message, data: { afterS } });
      this.d.events?.publish(n, { type: 'progress', state: n.provisionState, percent: 100, message });
      this.d.log.info({ node: n.name, afterS }, 'deployed system connected');
      this.told(uuid);
      return;
    }
    const message = `the deployed system's agent did not connect within ${Math.round(this.d.timeoutMs / 1000)} s after the reboot `
      + '(the image is written and the node stays active): check its console for the boot, the osp-agent unit and whether it reaches ospd\'s advertised address';
    await nodeStore.appendEvent(this.d.db, { nodeUuid: uuid, type: BOOT_EVENT.timeout, actor: 'server', message, data: { timeoutMs: this.d.timeoutMs } });
    this.d.events?.publish(n, { type: 'warning', state: n.provisionState, message });
    this.d.log.warn({ node: n.name, timeoutMs: this.d.timeoutMs }, 'deployed system did not connect');
    this.told(uuid);
  }
}
