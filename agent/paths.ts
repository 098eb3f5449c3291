import path from 'node:path';

/**
 * Every path the agent reads or writes, resolved under one root so that
 * `--root DIR` (tests, image builds) treats DIR as `/` with no exceptions.
 */
export interface AgentPaths {
  root: string;
  /** os-apply-config style template tree mirroring `/`. */
  templatesDir: string;
  /** os-refresh-config style phase directories. */
  refreshDir: string;
  /** Operator-supplied JSON files merged into the config. */
  localDataDir: string;
  /** Agent state: caches, last result, deployment records. */
  stateDir: string;
  /** Collected/merged config caches (each with a `.last` copy). */
  cacheDir: string;
  /** Working area for `script` deployments (bodies and outputs). */
  deploymentsDir: string;
  /** Kernel command line. */
  cmdlinePath: string;
  /** Lock preventing two runs at once. */
  lockPath: string;
  /** Last run result, read by `osp-agent status`. */
  lastResultPath: string;
}

export const DEFAULT_DIRS = {
  templates: '/usr/libexec/osp-agent/templates',
  refresh: '/usr/libexec/osp-agent/refresh',
  localData: '/var/lib/osp-agent/local-data',
  state: '/var/lib/osp-agent',
  cmdline: '/proc/cmdline',
} as const;

/** Maps an absolute in-system path to where it lives under `root`. */
export function underRoot(root: string, absPath: string): string {
  return path.join(root, absPath);
}

export function agentPaths(root = '/', overrides: Partial<Record<keyof typeof DEFAULT_DIRS, string>> = {}): AgentPaths {
  const dirs = { ...DEFAULT_DIRS, ...overrides };
  const r = path.resolve(root);
  const stateDir = underRoot(r, dirs.state);
  return {
    root: r,
    templatesDir: underRoot(r, dirs.templates),
    refreshDir: underRoot(r, dirs.refresh),
    localDataDir: underRoot(r, dirs.localData),
    stateDir,
    cacheDir: path.join(stateDir, 'cache'),
    deploymentsDir: path.join(stateDir, 'deployments'),
    cmdlinePath: underRoot(r, dirs.cmdline),
    lockPath: path.join(stateDir, 'run.lock'),
    lastResultPath: path.join(stateDir, 'last-result.json'),
  };
}
