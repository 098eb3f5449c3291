import { readFile } from 'node:fs/promises';
import YAML from 'yaml';

/** agent.yaml, as `ospctl node agent-config NODE` prints it. */
export interface AgentConfig {
  server: string;
  ca: string;
  node: string;
  token: string;
}

export class AgentConfigError extends Error {}

export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new AgentConfigError(`cannot read agent config ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = (YAML.parse(text) ?? {}) as Record<string, unknown>;
  } catch (e) {
    throw new AgentConfigError(`${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  for (const key of ['server', 'ca', 'node', 'token']) {
    if (typeof doc[key] !== 'string' || doc[key] === '') {
      throw new AgentConfigError(`${file}: '${key}' is missing or not a string (expected server: HOST:PORT, ca: PEM, node: NAME, token: TEXT)`);
    }
  }
  return { server: doc.server as string, ca: doc.ca as string, node: doc.node as string, token: doc.token as string };
}
