import YAML from 'yaml';
import type { Problem } from '../../common/errors.js';
import { MAC_EXPECTED, normaliseMac } from '../../common/mac.js';
import { PROPERTY_FIELDS, PROPERTY_NAMES, isNumericProperty, type NodeProperties, type PropertyName } from '../../common/node-properties.js';
import type { NodeInput } from './model.js';
import {
  DRIVER_ALIASES, asProblem, canonicalInfoKey, parseCapabilities, validateNode, type FieldProblem,
} from './validate.js';

/**
 * Reads a node file in TripleO's instackenv shape (pm_type, pm_addr, mac, cpu,
 * memory, …) or Ironic's own (driver, driver_info, properties, ports), as JSON
 * or YAML, and returns either every node or every problem: one line each,
 * naming the entry by index and name, the field, the value and what was
 * expected. Nothing is half-accepted.
 */
export interface ParsedImport {
  nodes: NodeInput[];
  problems: Problem[];
}

const IGNORED_KEYS = new Set(['resource_class', 'description', 'kernel_id', 'ramdisk_id', 'uuid', 'extra', 'instance_info', 'owner', 'lessee']);
const INSTACK_KEYS = new Set([
  'name', 'pm_type', 'pm_addr', 'pm_user', 'pm_password', 'pm_port', 'pm_system_id', 'pm_verify_ca', 'pm_cipher_suite',
  'mac', 'ports', 'cpu', 'memory', 'disk', 'arch', 'capabilities', 'root_device', 'driver', 'driver_info', 'properties', 'ipv4_address',
]);

// instackenv names the properties at the top level, shorter; Ironic's node files put them under `properties`.
const INSTACKENV_PROPERTIES: Record<PropertyName, string> = { cpus: 'cpu', memory_mb: 'memory', local_gb: 'disk', cpu_arch: 'arch', ipv4_address: 'ipv4_address' };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function num(v: unknown, field: string, problems: FieldProblem[]): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isFinite(n)) {
    problems.push({ field, value: v, expected: 'a whole number' });
    return undefined;
  }
  return n;
}

function str(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

function derivedName(addr: string | undefined, macs: string[]): string | undefined {
  if (addr) return `bmc-${addr.replace(/^[a-z]+:\/\//, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}`.slice(0, 63);
  if (macs[0]) return `node-${macs[0].replace(/:/g, '')}`;
  return undefined;
}

function entryToInput(e: Obj, problems: FieldProblem[]): NodeInput {
  for (const k of Object.keys(e)) {
    if (!INSTACK_KEYS.has(k) && !IGNORED_KEYS.has(k) && !k.startsWith('_')) {
      problems.push({ field: k, value: e[k], expected: `a known node field (${[...INSTACK_KEYS].join(', ')})` });
    }
  }
  const typeRaw = str(e.pm_type ?? e.driver);
  const driver = typeRaw !== undefined ? DRIVER_ALIASES[typeRaw.toLowerCase()] : undefined;
  if (!typeRaw) problems.push({ field: 'pm_type', value: undefined, expected: `a driver: ${Object.keys(DRIVER_ALIASES).join(', ')}` });
  else if (!driver) problems.push({ field: 'pm_type', value: typeRaw, expected: `one of ${Object.keys(DRIVER_ALIASES).join(', ')}` });
  const d = driver ?? 'fake';

  const info: Record<string, string> = {};
  if (e.driver_info !== undefined) {
    if (!isObj(e.driver_info)) problems.push({ field: 'driver_info', value: e.driver_info, expected: 'a mapping' });
    else for (const [k, v] of Object.entries(e.driver_info)) if (str(v) !== undefined) info[canonicalInfoKey(d, k)] = str(v)!;
  }
  const pm: [string, string][] = [['pm_addr', 'address'], ['pm_user', 'username'], ['pm_password', 'password'], ['pm_port', 'port'],
    ['pm_system_id', 'system_id'], ['pm_verify_ca', 'verify_ca'], ['pm_cipher_suite', 'cipher_suite']];
  for (const [from, to] of pm) {
    const v = str(e[from]);
    if (e[from] !== undefined && v === undefined) problems.push({ field: from, value: e[from], expected: 'a string' });
    if (v !== undefined && v !== '') info[to] = v;
  }
  if (driver && driver !== 'fake' && !info.address) {
    problems.push({ field: 'pm_addr', value: undefined, expected: `the BMC address for pm_type ${typeRaw}` });
  }

  const macs: string[] = [];
  const addMac = (v: unknown, field: string) => {
    const m = normaliseMac(v);
    if (!m) problems.push({ field, value: v, expected: MAC_EXPECTED });
    else if (!macs.includes(m)) macs.push(m);
  };
  if (e.mac !== undefined) {
    if (!Array.isArray(e.mac)) problems.push({ field: 'mac', value: e.mac, expected: 'a list of MAC addresses' });
    else e.mac.forEach((m, i) => addMac(m, `mac[${i}]`));
  }
  if (e.ports !== undefined) {
    if (!Array.isArray(e.ports)) problems.push({ field: 'ports', value: e.ports, expected: 'a list of {address: MAC}' });
    else e.ports.forEach((p, i) => addMac(isObj(p) ? p.address : p, `ports[${i}].address`));
  }

  const props = isObj(e.properties) ? e.properties : {};
  const properties: Record<string, number | string> = {};
  for (const name of PROPERTY_NAMES) {
    const top = INSTACKENV_PROPERTIES[name];
    const [raw, field] = e[top] !== undefined ? [e[top], top] : [props[name], `properties.${name}`];
    const f = PROPERTY_FIELDS[name];
    const v = isNumericProperty(f) ? num(raw, field, problems) : str(raw);
    if (v !== undefined) properties[f] = v;
  }

  const caps = parseCapabilities(e.capabilities ?? props.capabilities);
  if (caps.problem) problems.push(caps.problem);
  const rootRaw = e.root_device ?? props.root_device;
  const rootDevice: Record<string, string> = {};
  if (rootRaw !== undefined) {
    if (!isObj(rootRaw)) problems.push({ field: 'root_device', value: rootRaw, expected: 'a mapping of root device hints' });
    else for (const [k, v] of Object.entries(rootRaw)) rootDevice[k] = String(v);
  }
  const name = str(e.name) ?? derivedName(info.address, macs) ?? '';
  return { name, ports: macs, driver: d, driverInfo: info, properties: properties as NodeProperties, capabilities: caps.value, rootDevice };
}

export function parseNodeFile(content: string, source = 'node file'): ParsedImport {
  let doc: unknown;
  try {
    doc = content.trimStart().startsWith('{') ? JSON.parse(content) : YAML.parse(content);
  } catch (e) {
    return { nodes: [], problems: [{ field: '', description: `${source}: not valid JSON or YAML: ${(e as Error).message.split('\n')[0]}` }] };
  }
  const list = isObj(doc) ? doc.nodes : Array.isArray(doc) ? doc : undefined;
  if (!Array.isArray(list)) return { nodes: [], problems: [{ field: 'nodes', description: `${source}: expected {"nodes": [...]} at the top level` }] };
  if (list.length === 0) return { nodes: [], problems: [{ field: 'nodes', description: `${source}: "nodes" is empty` }] };

  const nodes: NodeInput[] = [];
  const problems: Problem[] = [];
  const names = new Map<string, number>();
  const macs = new Map<string, number>();
  list.forEach((raw, i) => {
    const where = (n: string) => `nodes[${i}]${n ? ` (${n})` : ''}`;
    if (!isObj(raw)) {
      problems.push({ field: `nodes[${i}]`, description: `${where('')}: expected a mapping of node fields, found ${JSON.stringify(raw)}` });
      return;
    }
    const fieldProblems: FieldProblem[] = [];
    const input = entryToInput(raw, fieldProblems);
    const parsingFailed = fieldProblems.length > 0;
    if (!parsingFailed) fieldProblems.push(...validateNode(input).filter((p) => p.field !== 'driver_info.address' || raw.pm_addr !== undefined));
    const prevName = names.get(input.name);
    if (input.name && prevName !== undefined) fieldProblems.push({ field: 'name', value: input.name, expected: `a name not already used by nodes[${prevName}]` });
    names.set(input.name, i);
    for (const m of input.ports) {
      const prev = macs.get(m);
      if (prev !== undefined && prev !== i) fieldProblems.push({ field: 'mac', value: m, expected: `a MAC not already used by nodes[${prev}]` });
      macs.set(m, i);
    }
    for (const p of fieldProblems) problems.push(asProblem(p, `nodes[${i}]`, where(input.name)));
    nodes.push(input);
  });
  return { nodes, problems };
}
