import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { applyConfigData } from '../collect/collector.js';
import type { JsonCache } from '../collect/cache.js';
import { canonicalJson, isPlainObject } from '../collect/merge.js';
import type { SoftwareDeployment } from '../collect/types.js';
import { atomicWrite } from '../fs/atomic-write.js';
import { runProcess } from '../process/run-process.js';

export const DEPLOYMENT_GROUPS = ['script', 'apply-config'] as const;

export interface DeploymentResult {
  id: string;
  name: string;
  status: 'succeeded' | 'failed';
  exitCode: number;
  durationMs: number;
  stdoutTail: string;
  stderrTail: string;
  /** Heat's reserved outputs (deploy_stdout, deploy_stderr, deploy_status_code) plus the script's own. */
  outputs: Record<string, string>;
}

export interface DeployerDeps {
  /** Working area: `<dir>/<id>/` holds the script body and its output files. */
  deploymentsDir: string;
  /** Records which deployment ids ran with which config hash. */
  cache: JsonCache;
  scriptTimeoutMs: number;
  tailBytes?: number;
}

const RECORD = 'deployments';
/** Input names become environment variables, so they must be valid shell names. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Heat SoftwareDeployment semantics: each deployment runs once per id, and
 * again only when its content (config, inputs, options, group) changes.
 * A deployment is recorded as done only when it succeeds, so failures retry.
 */
export class Deployer {
  constructor(private readonly deps: DeployerDeps) {}

  async run(deployments: SoftwareDeployment[], env: NodeJS.ProcessEnv): Promise<DeploymentResult[]> {
    const done = (await this.deps.cache.read<Record<string, string>>(RECORD)) ?? {};
    const results: DeploymentResult[] = [];
    for (const d of deployments) {
      const key = contentHash(d);
      if (done[d.id] === key) continue;
      const r = await this.runOne(d, env);
      results.push(r);
      if (r.status === 'succeeded') {
        done[d.id] = key;
        await this.deps.cache.write(RECORD, done);
      }
    }
    return results;
  }

  private async runOne(d: SoftwareDeployment, env: NodeJS.ProcessEnv): Promise<DeploymentResult> {
    if (d.group === 'apply-config') {
      // Its config was merged into the apply data by the collector; only its shape is checked here.
      return isPlainObject(applyConfigData(d))
        ? result(d, 'succeeded', 0, 0, '', '')
        : result(d, 'failed', 1, 0, '', `deployment ${d.name} (${d.id}): apply-config config must be a JSON object\n`);
    }
    if (d.group === 'script') return this.runScript(d, env);
    return result(
      d,
      'failed',
      1,
      0,
      '',
      `deployment ${d.name} (${d.id}): group "${d.group}" is not supported; expected one of ${DEPLOYMENT_GROUPS.join(', ')}\n`,
    );
  }

  private async runScript(d: SoftwareDeployment, env: NodeJS.ProcessEnv): Promise<DeploymentResult> {
    if (typeof d.config !== 'string' || d.config.length === 0) {
      return result(d, 'failed', 1, 0, '', `deployment ${d.name} (${d.id}): script config must be a non-empty string\n`);
    }
    const childEnv: NodeJS.ProcessEnv = { ...env };
    for (const input of d.inputs ?? []) {
      if (!ENV_NAME.test(input.name)) {
        return result(d, 'failed', 1, 0, '', `deployment ${d.name} (${d.id}): input name "${input.name}" is not a valid environment variable name\n`);
      }
      childEnv[input.name] = typeof input.value === 'string' ? input.value : (JSON.stringify(input.value) ?? '');
    }
    const dir = path.join(this.deps.deploymentsDir, safeId(d.id));
    // Stale outputs from an earlier run must not be reported as this run's.
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const script = path.join(dir, 'script');
    await atomicWrite(script, d.config, { mode: 0o700 });
    const outputsPrefix = path.join(dir, 'outputs');
    childEnv.heat_outputs_path = outputsPrefix;
    const out = await runProcess(script, { env: childEnv, cwd: dir, timeoutMs: this.deps.scriptTimeoutMs, tailBytes: this.deps.tailBytes });
    let stderr = out.stderrTail;
    if (out.spawnError) stderr += `osp-agent: could not start deployment ${d.name}: ${out.spawnError}\n`;
    if (out.timedOut) stderr += `osp-agent: deployment ${d.name} timed out after ${this.deps.scriptTimeoutMs} ms\n`;
    const exitCode = out.timedOut && out.exitCode === 0 ? 1 : out.exitCode;
    const r = result(d, exitCode === 0 && !out.timedOut ? 'succeeded' : 'failed', exitCode, out.durationMs, out.stdoutTail, stderr);
    Object.assign(r.outputs, await readOutputs(dir));
    return r;
  }
}

function result(
  d: SoftwareDeployment,
  status: 'succeeded' | 'failed',
  exitCode: number,
  durationMs: number,
  stdoutTail: string,
  stderrTail: string,
): DeploymentResult {
  return {
    id: d.id,
    name: d.name,
    status,
    exitCode,
    durationMs,
    stdoutTail,
    stderrTail,
    outputs: { deploy_stdout: stdoutTail, deploy_stderr: stderrTail, deploy_status_code: String(exitCode) },
  };
}

async function readOutputs(dir: string): Promise<Record<string, string>> {
  const outputs: Record<string, string> = {};
  for (const n of await readdir(dir)) {
    if (!n.startsWith('outputs.')) continue;
    const name = n.slice('outputs.'.length);
    if (name.length === 0 || name.startsWith('deploy_')) continue;
    outputs[name] = await readFile(path.join(dir, n), 'utf8');
  }
  return outputs;
}

function contentHash(d: SoftwareDeployment): string {
  return createHash('sha256').update(canonicalJson({ g: d.group, c: d.config, i: d.inputs, o: d.options })).digest('hex');
}

/** Deployment ids come from the server; never let one name a path outside our directory. */
function safeId(id: string): string {
  return /^[A-Za-z0-9._-]+$/.test(id) && id !== '.' && id !== '..' ? id : createHash('sha256').update(id).digest('hex').slice(0, 32);
}
