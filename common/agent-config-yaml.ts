import YAML from 'yaml';

export interface AgentCredentials {
  server: string;
  caPem: string;
  caSha256: string;
  node: string;
  token: string;
  /** '' or absent: the agent has no MQTT listener to use. */
  mqttUrl?: string;
}

/** The osp-agent's agent.yaml: what `ospctl node agent-config` prints and a deploy's config drive carries. */
export function agentConfigYaml(c: AgentCredentials): string {
  return YAML.stringify({ server: c.server, ca: c.caPem, ca_sha256: c.caSha256, node: c.node, token: c.token, ...(c.mqttUrl ? { mqtt: c.mqttUrl } : {}) });
}
