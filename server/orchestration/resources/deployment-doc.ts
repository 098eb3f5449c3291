import { createHash } from 'node:crypto';
import type { DeploymentDoc } from '../../store/configs.js';
import type { SoftwareConfigRow } from '../../store/software-configs.js';
import { ResourceFailure } from '../engine/contract.js';
import { agentGroup } from './software-config.js';

/** What Heat tells a deployment about itself, as the deploy_* inputs. */
export interface HeatContext {
  serverId: string;
  action: 'CREATE' | 'UPDATE';
  /** Heat's `stack_name/stack_id`. */
  stackId: string;
  resourceName: string;
}

export interface StructuredOptions {
  /** The key that marks a substitution (`get_input` unless the template says otherwise). */
  inputKey: string;
  /** STRICT: a get_input naming no input is an error; LAX (Heat's default): it stays as written. */
  strict: boolean;
}

const NAME_MAX = 128;
const HASH_CHARS = 10;

/**
 * The deployment's name in the node document: readable (stack path,
 * resource, server key) and stable across restarts and updates, within
 * NodeConfigs' name rule. The hash of the exact parts keeps two paths that
 * sanitise alike (`a/b` and `a_b`) apart and bounds the length.
 */
export function deploymentName(stackPath: string, resource: string, serverKey?: string): string {
  const parts = serverKey === undefined ? [stackPath, resource] : [stackPath, resource, serverKey];
  const hash = createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, HASH_CHARS);
  let readable = parts.map((p) => p.replace(/[^A-Za-z0-9_-]+/g, '_')).join('.');
  if (!/^[A-Za-z0-9]/.test(readable)) readable = `d${readable}`;
  return `${readable.slice(0, NAME_MAX - HASH_CHARS - 1)}.${hash}`;
}

/**
 * Inputs as Heat derives them: each declared input with its default
 * overridden by input_values, then input_values the config does not declare,
 * then Heat's deploy_* inputs (which scripts such as TripleO's read).
 */
export function deriveInputs(config: SoftwareConfigRow, inputValues: Record<string, unknown>, heat: HeatContext): { name: string; value: unknown }[] {
  const rest = { ...inputValues };
  const out: { name: string; value: unknown }[] = [];
  for (const i of config.inputs) {
    const value = i.name in rest ? rest[i.name] : i.default;
    delete rest[i.name];
    // The agent turns non-strings into JSON; an input with neither value nor default is empty, not the text "null".
    out.push({ name: i.name, value: value ?? '' });
  }
  for (const [name, value] of Object.entries(rest)) out.push({ name, value: value ?? '' });
  out.push(
    { name: 'deploy_server_id', value: heat.serverId },
    { name: 'deploy_action', value: heat.action },
    { name: 'deploy_stack_id', value: heat.stackId },
    { name: 'deploy_resource_name', value: heat.resourceName },
    { name: 'deploy_signal_transport', value: 'NO_SIGNAL' },
  );
  return out;
}

/** StructuredDeployment: `{get_input: name}` anywhere in the structured config becomes that input's value. */
export function substituteInputs(value: unknown, inputs: Map<string, unknown>, opts: StructuredOptions, at = 'config'): unknown {
  if (Array.isArray(value)) return value.map((v, n) => substituteInputs(v, inputs, opts, `${at}[${n}]`));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  if (entries.length === 1 && entries[0][0] === opts.inputKey && typeof entries[0][1] === 'string') {
    const name = entries[0][1];
    if (inputs.has(name)) return inputs.get(name);
    if (opts.strict) {
      throw new ResourceFailure(`${at}: ${opts.inputKey} '${name}' names no input (input_values_validate is STRICT); inputs are ${[...inputs.keys()].join(', ')}`, { input: name });
    }
    return value;
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, substituteInputs(v, inputs, opts, `${at}.${k}`)]));
}

/** The deployment as the node document holds it (NodeConfigs assigns the id). */
export function deploymentDoc(
  name: string,
  config: SoftwareConfigRow,
  inputValues: Record<string, unknown>,
  heat: HeatContext,
  structured?: StructuredOptions,
): Omit<DeploymentDoc, 'id'> {
  const group = agentGroup(config.group, config.config);
  if (typeof group !== 'string') throw new ResourceFailure(`software config ${config.resourceName} (${config.id}): ${group.problem}`, { config: config.id });
  const inputs = deriveInputs(config, inputValues, heat);
  let body = config.config;
  if (structured && typeof body === 'object' && body !== null) body = substituteInputs(body, new Map(inputs.map((i) => [i.name, i.value])), structured);
  return {
    name,
    group,
    config: typeof body === 'string' ? body : JSON.stringify(body),
    inputs,
    options: config.options,
  };
}
