/**
 * The MQTT topic scheme (ARCHITECTURE.md, "Wire contracts"). Every program
 * builds and parses topics here so the scheme lives in one place.
 *
 * Metric keys with labels: a metrics payload is one flat JSON object, so a
 * labelled series is flattened into its key using the Prometheus series
 * notation, e.g. `filesystem_free_bytes{mount="/var"}`. `metricKey()` builds
 * such keys and `parseMetricKey()` reverses them (the Prometheus exporter uses
 * it to turn keys back into labels).
 */

export const BASE_TOPIC = 'osp';

/** The per-node channels an agent may publish on. */
export const NODE_CHANNELS = ['availability', 'facts', 'metrics', 'events'] as const;
export type NodeChannel = (typeof NODE_CHANNELS)[number];

/** Node names are DNS labels (RFC 1123 section 2.1). */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

export function isNodeName(name: string): boolean {
  return DNS_LABEL.test(name);
}

export function nodeTopic(node: string, channel: NodeChannel): string {
  if (!isNodeName(node)) {
    throw new Error(`node name ${JSON.stringify(node)} is not a DNS label (expected letters, digits and '-', 1-63 characters)`);
  }
  return `${BASE_TOPIC}/nodes/${node}/${channel}`;
}

export function nodePrefix(node: string): string {
  return `${BASE_TOPIC}/nodes/${node}/`;
}

export function stackEventsTopic(stack: string): string {
  return `${BASE_TOPIC}/stacks/${stack}/events`;
}

export const SERVER_STATUS_TOPIC = `${BASE_TOPIC}/server/status`;

/** Every node channel, for in-process subscribers. */
export const ALL_NODES_FILTER = `${BASE_TOPIC}/nodes/+/+`;

export interface ParsedNodeTopic {
  node: string;
  channel: NodeChannel;
}

/** `osp/nodes/<node>/<channel>` → parts, or null for anything else. */
export function parseNodeTopic(topic: string): ParsedNodeTopic | null {
  const parts = topic.split('/');
  if (parts.length !== 4 || parts[0] !== BASE_TOPIC || parts[1] !== 'nodes') return null;
  const [, , node, channel] = parts;
  if (!isNodeName(node)) return null;
  if (!(NODE_CHANNELS as readonly string[]).includes(channel)) return null;
  return { node, channel: channel as NodeChannel };
}

/** Label values are escaped as in the Prometheus text format (backslash, quote, newline). */
function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function metricKey(name: string, labels: Record<string, string> = {}): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return name;
  return `${name}{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

export interface ParsedMetricKey {
  name: string;
  labels: Record<string, string>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Reverses `metricKey()`; null when the key is not a valid series name. */
export function parseMetricKey(key: string): ParsedMetricKey | null {
  const brace = key.indexOf('{');
  if (brace < 0) return METRIC_NAME.test(key) ? { name: key, labels: {} } : null;
  const name = key.slice(0, brace);
  if (!METRIC_NAME.test(name) || !key.endsWith('}')) return null;
  const body = key.slice(brace + 1, -1);
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const eq = body.indexOf('=', i);
    if (eq < 0 || body[eq + 1] !== '"') return null;
    const label = body.slice(i, eq);
    if (!LABEL_NAME.test(label)) return null;
    let j = eq + 2;
    let value = '';
    for (; j < body.length && body[j] !== '"'; j++) {
      if (body[j] === '\\') {
        j++;
        value += body[j] === 'n' ? '\n' : body[j];
      } else {
        value += body[j];
      }
    }
    if (j >= body.length) return null;
    labels[label] = value;
    i = j + 1;
    if (i < body.length) {
      if (body[i] !== ',') return null;
      i++;
    }
  }
  return { name, labels };
}
