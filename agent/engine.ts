import path from 'node:path';
import type { Logger } from '../common/logging.js';
import { silentLogger } from '../common/logging.js';
import { Applier } from './apply/applier.js';
import { JsonCache } from './collect/cache.js';
import { Collector, type Collected } from './collect/collector.js';
import type { ServerSource } from './collect/types.js';
import { Deployer, type DeploymentResult } from './deploy/deployer.js';
import { atomicWrite } from './fs/atomic-write.js';
import type { AgentPaths } from './paths.js';
import { RunLock } from './refresh/lock.js';
import { ERROR_PHASE, PHASES, Refresher, skipped, type PhaseResult } from './refresh/refresher.js';

/** One run, shaped for the server's acknowledgement (AckRevision). */
export interface RunResult {
  revision: number;
  status: 'succeeded' | 'failed';
  /** false: the merged config equals the committed one, so nothing ran. */
  changed: boolean;
  /** sha256 of the merged config and deployments this run saw. */
  configHash: string;
  startedAt: string;
  finishedAt: string;
  phases: PhaseResult[];
  deployments: DeploymentResult[];
  /** Files the apply step wrote/left/removed (in-system paths). */
  files?: { written: string[]; unchanged: string[]; removed: string[] };
}

/** What was last committed: the config a successful run applied. */
export interface CommitState {
  revision: number;
  configHash: string;
  committedAt: string;
}

export interface EngineDeps {
  paths: AgentPaths;
  server: ServerSource;
  logger?: Logger;
  /** Per refresh script / deployment script; the process group is killed after it. */
  scriptTimeoutMs?: number;
  tailBytes?: number;
  /** Extra environment for hooks and deployments (PATH with osp-agent on it, ...). */
  env?: NodeJS.ProcessEnv;
}

export const MERGED_CACHE = 'merged';
export const COMMIT_CACHE = 'commit';
/** The config a run in progress is applying; hooks read it through OSP_CONFIG_FILE. */
export const CANDIDATE_FILE = 'candidate.json';

/**
 * collect → (if changed) apply → refresh phases → deployments → commit.
 * A failed run commits nothing, so the same config is tried again next time.
 */
export class Engine {
  readonly cache: JsonCache;
  private readonly log: Logger;
  private readonly collector: Collector;
  private readonly applier: Applier;
  private readonly refresher: Refresher;
  private readonly deployer: Deployer;
  private readonly lock: RunLock;

  constructor(private readonly deps: EngineDeps) {
    const p = deps.paths;
    const timeoutMs = deps.scriptTimeoutMs ?? 600_000;
    this.log = deps.logger ?? silentLogger();
    this.cache = new JsonCache(p.cacheDir);
    this.collector = new Collector({ server: deps.server, localDataDir: p.localDataDir, cmdlinePath: p.cmdlinePath });
    this.applier = new Applier({ root: p.root, templatesDir: p.templatesDir, execTimeoutMs: timeoutMs, env: this.baseEnv() });
    this.refresher = new Refresher({ refreshDir: p.refreshDir, scriptTimeoutMs: timeoutMs, tailBytes: deps.tailBytes });
    this.deployer = new Deployer({ deploymentsDir: p.deploymentsDir, cache: this.cache, scriptTimeoutMs: timeoutMs, tailBytes: deps.tailBytes });
    this.lock = new RunLock(p.lockPath);
  }

  /** `force`: run even when the merged config equals the committed one. */
  async run(opts: { force?: boolean } = {}): Promise<RunResult> {
    await this.lock.acquire();
    try {
      const result = await this.runLocked(opts.force ?? false);
      await atomicWrite(this.deps.paths.lastResultPath, JSON.stringify(result, null, 2) + '\n', { mode: 0o600 });
      this.log.info({ revision: result.revision, status: result.status, changed: result.changed }, 'agent run finished');
      return result;
    } finally {
      await this.lock.release();
    }
  }

  async committed(): Promise<CommitState | undefined> {
    return this.cache.read<CommitState>(COMMIT_CACHE);
  }

  private async runLocked(force: boolean): Promise<RunResult> {
    const startedAt = new Date().toISOString();
    const base = { startedAt, deployments: [] as DeploymentResult[] };
    let collected: Collected;
    try {
      collected = await this.collector.collect();
    } catch (e) {
      // Without a merged config nothing can run; report it like a failed phase.
      const revision = this.deps.server.latest()?.revision ?? 0;
      const phase = failedPhase('collect', e);
      return { ...base, revision, status: 'failed', changed: true, configHash: '', finishedAt: now(), phases: [phase] };
    }
    const commit = await this.committed();
    if (!force && commit?.configHash === collected.hash) {
      return { ...base, revision: collected.revision, status: 'succeeded', changed: false, configHash: collected.hash, finishedAt: now(), phases: [] };
    }
    const candidate = path.join(this.deps.paths.stateDir, CANDIDATE_FILE);
    await atomicWrite(candidate, JSON.stringify(collected.merged, null, 2) + '\n', { mode: 0o600 });
    const env = this.runEnv(candidate, collected.revision);

    const phases: PhaseResult[] = [];
    let files: RunResult['files'];
    const applyStarted = Date.now();
    try {
      files = await this.applier.apply(collected.merged);
      phases.push({
        name: 'apply',
        status: 'succeeded',
        exitCode: 0,
        durationMs: Date.now() - applyStarted,
        stdoutTail: files.written.map((f) => `wrote ${f}\n`).join('') + files.removed.map((f) => `removed ${f}\n`).join(''),
        stderrTail: '',
      });
    } catch (e) {
      phases.push({ ...failedPhase('apply', e), durationMs: Date.now() - applyStarted });
      phases.push(...PHASES.map(skipped));
      phases.push(await this.refresher.runPhase(ERROR_PHASE, env));
    }
    if (phases[0].status === 'succeeded') phases.push(...(await this.refresher.run(env)));

    // error.d running means something failed, even when error.d itself succeeds.
    const hooksOk = !phases.some((p) => p.status === 'failed' || p.name === ERROR_PHASE);
    const deployments = hooksOk ? await this.deployer.run(collected.deployments, env) : [];
    const ok = hooksOk && deployments.every((d) => d.status === 'succeeded');
    if (ok) await this.commit(collected);
    return {
      ...base,
      revision: collected.revision,
      status: ok ? 'succeeded' : 'failed',
      changed: true,
      configHash: collected.hash,
      finishedAt: now(),
      phases,
      deployments,
      files,
    };
  }

  private async commit(c: Collected): Promise<void> {
    await this.cache.write(MERGED_CACHE, c.merged);
    const state: CommitState = { revision: c.revision, configHash: c.hash, committedAt: now() };
    await this.cache.write(COMMIT_CACHE, state);
  }

  private baseEnv(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.deps.env, OSP_ROOT: this.deps.paths.root };
  }

  /** Hooks find the config as os-refresh-config scripts expect (OS_CONFIG_FILES) and our own way. */
  private runEnv(candidate: string, revision: number): NodeJS.ProcessEnv {
    return {
      ...this.baseEnv(),
      OSP_CONFIG_FILE: candidate,
      OS_CONFIG_FILES: candidate,
      OSP_CONFIG_REVISION: String(revision),
    };
  }
}

function failedPhase(name: string, e: unknown): PhaseResult {
  const msg = e instanceof Error ? e.message : String(e);
  return { name, status: 'failed', exitCode: 1, durationMs: 0, stdoutTail: '', stderrTail: `${msg}\n` };
}

function now(): string {
  return new Date().toISOString();
}
