import { createHash } from 'node:crypto';
import { readCmdline } from './cmdline.js';
import { readLocalData } from './local-data.js';
import { canonicalJson, deepMerge, isPlainObject } from './merge.js';
import type { JsonObject, ServerSource, SoftwareDeployment } from './types.js';

/** One collection: the merged config and what produced it. */
export interface Collected {
  /** Server revision it includes, 0 when the server has sent nothing yet. */
  revision: number;
  merged: JsonObject;
  deployments: SoftwareDeployment[];
  /** sha256 over merged config and deployments: equal hash, nothing to run. */
  hash: string;
}

export interface CollectorDeps {
  server: ServerSource;
  localDataDir: string;
  cmdlinePath: string;
}

/**
 * Merge order, later wins (documented in agent/README.md):
 *   1. kernel command line `osp.*` keys
 *   2. server metadata (the latest revision received)
 *   3. `apply-config` deployments' config, in deployment order
 *   4. local-data `*.json` files, in lexical order (the operator on the node has the last word)
 */
export class Collector {
  constructor(private readonly deps: CollectorDeps) {}

  async collect(): Promise<Collected> {
    const cmdline = await readCmdline(this.deps.cmdlinePath);
    const local = await readLocalData(this.deps.localDataDir);
    const server = this.deps.server.latest();
    const deployments = server?.deployments ?? [];
    const applyConfigs = deployments.filter((d) => d.group === 'apply-config').map(applyConfigData).filter(isPlainObject);
    const merged = deepMerge(cmdline, server?.metadata ?? {}, ...applyConfigs, ...local);
    const hash = createHash('sha256').update(canonicalJson({ merged, deployments })).digest('hex');
    return { revision: server?.revision ?? 0, merged, deployments, hash };
  }
}

/** An apply-config deployment's config as an object; text is parsed as JSON. */
export function applyConfigData(d: SoftwareDeployment): unknown {
  if (typeof d.config === 'string') {
    try {
      return JSON.parse(d.config) as unknown;
    } catch {
      return undefined;
    }
  }
  return d.config;
}
