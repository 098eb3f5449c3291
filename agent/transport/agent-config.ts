import { readFile } from 'node:fs/promises';
import YAML from 'yaml';

/** agent.yaml, as `ospctl node agent-config NODE` prints it. */
export interface AgentConfig {
  server: string;
  ca: string;
  node: string;
  token: string;
  /** MQTT broker for telemetry (mqtts://HOST:PORT, or mqtt:// to a loopback listener); absent: no telemetry. */
  mqtt?: string;
  /** How often metrics are published (default 10000). */
  metricsIntervalMs?: number;
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
  const cfg: AgentConfig = { server: doc.server as string, ca: doc.ca as string, node: doc.node as string, token: doc.token as string };
  if (doc.mqtt !== undefined && doc.mqtt !== '') {
    if (typeof doc.mqtt !== 'string' || !/^mqtts?:\/\/[^/\s]+:\d{1,5}$/.test(doc.mqtt)) {
      throw new AgentConfigError(`${file}: 'mqtt' is ${JSON.stringify(doc.mqtt)}; expected mqtts://HOST:PORT (or mqtt://127.0.0.1:PORT)`);
    }
    cfg.mqtt = doc.mqtt;
  }
  if (doc.metrics_interval_ms !== undefined) {
    const v = doc.metrics_interval_ms;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 100 || v > 3_600_000) {
      throw new AgentConfigError(`${file}: 'metrics_interval_ms' is ${JSON.stringify(v)}; expected a whole number from 100 to 3600000`);
    }
    cfg.metricsIntervalMs = v;
  }
  return cfg;
}
