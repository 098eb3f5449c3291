import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { defaultOspdDataDir } from '../common/ospd-data-dir.js';
import { UsageError } from './output.js';

export interface ClientConfig {
  server: string;
  ca: string;
  token: string;
  source: string;
}

/** --config, then $OSPCTL_CONFIG, then ~/.config/ospctl/config.yaml, then the local ospd's admin.yaml. */
export async function loadClientConfig(explicit?: string): Promise<ClientConfig> {
  const candidates = explicit
    ? [explicit]
    : process.env.OSPCTL_CONFIG
      ? [process.env.OSPCTL_CONFIG]
      : [path.join(os.homedir(), '.config', 'ospctl', 'config.yaml'), path.join(defaultOspdDataDir(), 'admin.yaml')];
  for (const file of candidates) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !explicit && candidates.length > 1) continue;
      throw new UsageError(`cannot read client config ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = YAML.parse(text);
    } catch (e) {
      throw new UsageError(`${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    const d = (doc ?? {}) as Record<string, unknown>;
    for (const key of ['server', 'ca', 'token']) {
      if (typeof d[key] !== 'string' || d[key] === '') throw new UsageError(`${file}: '${key}' is missing or not a string (expected server: HOST:PORT, ca: PEM, token: TEXT)`);
    }
    return { server: d.server as string, ca: d.ca as string, token: d.token as string, source: file };
  }
  throw new UsageError(`no client config found (tried ${candidates.join(', ')}); pass --config or set OSPCTL_CONFIG to ospd's admin.yaml`);
}
