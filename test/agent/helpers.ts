import { execFile, execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const AGENT_BIN = path.join(REPO, 'dist', 'osp-agent');

/** Builds dist/osp-agent when it is missing or older than any agent source. */
export async function ensureAgentBinary(): Promise<string> {
  const binMtimeMs = (() => {
    try {
      return statSync(AGENT_BIN).mtimeMs;
    } catch {
      return 0;
    }
  })();
  const newest = await newestMtimeMs([path.join(REPO, 'agent'), path.join(REPO, 'common'), path.join(REPO, 'scripts', 'build-agent.mjs')]);
  if (binMtimeMs < newest) execFileSync(process.execPath, [path.join(REPO, 'scripts', 'build-agent.mjs')], { stdio: 'pipe' });
  return AGENT_BIN;
}

async function newestMtimeMs(paths: string[]): Promise<number> {
  let newest = 0;
  for (const p of paths) {
    const st = await stat(p);
    if (st.isDirectory()) newest = Math.max(newest, await newestMtimeMs((await readdir(p)).map((n) => path.join(p, n))));
    else newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

export interface AgentRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real binary; `env` is added to a minimal environment. */
export function runAgent(args: string[], env: NodeJS.ProcessEnv = {}): Promise<AgentRun> {
  return new Promise((resolve) => {
    execFile(
      AGENT_BIN,
      args,
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export async function tempRoot(prefix = 'osp-agent-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeRoot(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Writes a file under root, creating its directory; `mode` is applied exactly (not umask-filtered). */
export async function put(root: string, rel: string, body: string, mode = 0o644): Promise<string> {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, body);
  await chmod(file, mode);
  return file;
}

/** Stands in for the transport: the on-disk cache CachedServerSource.update() writes. */
export async function setServerConfig(root: string, cfg: { revision: number; metadata: object; deployments?: object[] }): Promise<void> {
  const dir = path.join(root, 'var/lib/osp-agent/cache');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'server.json'), JSON.stringify({ deployments: [], ...cfg }));
}
