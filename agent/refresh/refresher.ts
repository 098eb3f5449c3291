import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { runProcess, type ProcessOutcome } from '../process/run-process.js';

/**
 * Our phase order (os-refresh-config's README and code disagree; this is
 * ours, see agent/README.md): migration.d runs before post-configure.d, so
 * services are activated only once their data is migrated.
 */
export const PHASES = ['pre-configure.d', 'configure.d', 'migration.d', 'post-configure.d'] as const;
export const ERROR_PHASE = 'error.d';

/** dib-run-parts' RUN_PARTS_REGEX: editor backups and `.dpkg-old` files never run. */
const RUNNABLE_NAME = /^[0-9A-Za-z_-]+$/;

export type StepStatus = 'succeeded' | 'failed' | 'skipped';

export interface PhaseResult {
  name: string;
  status: StepStatus;
  exitCode: number;
  durationMs: number;
  stdoutTail: string;
  stderrTail: string;
  /** The script that failed, when one did. */
  failedScript?: string;
}

export interface RefresherDeps {
  refreshDir: string;
  scriptTimeoutMs: number;
  tailBytes?: number;
}

/** os-refresh-config: runs each phase's scripts in order; first failure stops and runs error.d. */
export class Refresher {
  constructor(private readonly deps: RefresherDeps) {}

  async run(env: NodeJS.ProcessEnv): Promise<PhaseResult[]> {
    const results: PhaseResult[] = [];
    let failed = false;
    for (const phase of PHASES) {
      if (failed) {
        results.push(skipped(phase));
        continue;
      }
      const r = await this.runPhase(phase, env);
      results.push(r);
      failed = r.status === 'failed';
    }
    if (failed) results.push(await this.runPhase(ERROR_PHASE, env));
    return results;
  }

  /** Runs one phase directory; exported for the engine's error path after apply failures. */
  async runPhase(phase: string, env: NodeJS.ProcessEnv): Promise<PhaseResult> {
    const dir = path.join(this.deps.refreshDir, phase);
    const scripts = await runnableScripts(dir);
    const started = Date.now();
    let stdout = '';
    let stderr = '';
    for (const name of scripts) {
      const out: ProcessOutcome = await runProcess(path.join(dir, name), {
        env: { ...env, OSP_REFRESH_PHASE: phase },
        cwd: dir,
        timeoutMs: this.deps.scriptTimeoutMs,
        tailBytes: this.deps.tailBytes,
      });
      stdout = keepTail(stdout + out.stdoutTail, this.deps.tailBytes);
      stderr = keepTail(stderr + out.stderrTail, this.deps.tailBytes);
      if (out.exitCode !== 0 || out.timedOut) {
        const why = out.spawnError ?? (out.timedOut ? `timed out after ${this.deps.scriptTimeoutMs} ms` : `exited with status ${out.exitCode}`);
        stderr = keepTail(`${stderr}${stderr.endsWith('\n') || stderr === '' ? '' : '\n'}osp-agent: ${phase}/${name} ${why}\n`, this.deps.tailBytes);
        return {
          name: phase,
          status: 'failed',
          exitCode: out.exitCode === 0 ? 1 : out.exitCode,
          durationMs: Date.now() - started,
          stdoutTail: stdout,
          stderrTail: stderr,
          failedScript: name,
        };
      }
    }
    return { name: phase, status: 'succeeded', exitCode: 0, durationMs: Date.now() - started, stdoutTail: stdout, stderrTail: stderr };
  }
}

export function skipped(name: string): PhaseResult {
  return { name, status: 'skipped', exitCode: 0, durationMs: 0, stdoutTail: '', stderrTail: '' };
}

/** Executable files with acceptable names, in `LANG=C sort -n` order (numeric prefix, then bytes). */
export async function runnableScripts(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const ok: string[] = [];
  for (const n of names) {
    if (!RUNNABLE_NAME.test(n)) continue;
    const st = await stat(path.join(dir, n));
    if (st.isFile() && (st.mode & 0o111) !== 0) ok.push(n);
  }
  return ok.sort(compareRunParts);
}

function compareRunParts(a: string, b: string): number {
  const na = /^\d+/.exec(a);
  const nb = /^\d+/.exec(b);
  const va = na ? Number(na[0]) : 0;
  const vb = nb ? Number(nb[0]) : 0;
  if (va !== vb) return va - vb;
  return a < b ? -1 : a > b ? 1 : 0;
}

function keepTail(s: string, limit = 4096): string {
  return s.length > limit ? s.slice(s.length - limit) : s;
}
