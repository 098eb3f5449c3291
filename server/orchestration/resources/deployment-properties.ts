import { shownValue } from '../../../common/errors.js';
import { isObj } from '../hot/source.js';
import { ResourceFailure } from '../engine/contract.js';
import type { StructuredOptions } from './deployment-doc.js';

export const SOFTWARE_DEPLOYMENT = 'OS::Heat::SoftwareDeployment';
export const STRUCTURED_DEPLOYMENT = 'OS::Heat::StructuredDeployment';
export const SOFTWARE_DEPLOYMENT_GROUP = 'OS::Heat::SoftwareDeploymentGroup';
export const STRUCTURED_DEPLOYMENT_GROUP = 'OS::Heat::StructuredDeploymentGroup';

/** Heat's actions; only CREATE and UPDATE run anything here (DELETE, SUSPEND, RESUME are accepted and ignored). */
const ACTIONS = ['CREATE', 'UPDATE', 'DELETE', 'SUSPEND', 'RESUME'];
const DEFAULT_ACTIONS = ['CREATE', 'UPDATE'];

export interface DeploymentProps {
  config: string;
  /** Server key → node (name or uuid). A single deployment has one key, ''. */
  servers: Record<string, string>;
  inputValues: Record<string, unknown>;
  actions: string[];
  name?: string;
  /** Set for the Structured* types: get_input substitution. */
  structured?: StructuredOptions;
}

export function isGroup(type: string): boolean {
  return type === SOFTWARE_DEPLOYMENT_GROUP || type === STRUCTURED_DEPLOYMENT_GROUP;
}

function isStructured(type: string): boolean {
  return type === STRUCTURED_DEPLOYMENT || type === STRUCTURED_DEPLOYMENT_GROUP;
}

/** One line per problem, naming the property, the value and what was expected. */
export function deploymentProblems(type: string, p: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const bad = (field: string, v: unknown, expected: string) => {
    // Validation before resources exist sees get_resource/get_attr values as a symbol (hot/stack.ts UNKNOWN): nothing to check yet.
    if (typeof v !== 'symbol') problems.push(`property '${field}': ${shownValue(v)}: expected ${expected}`);
  };
  if (typeof p.config !== 'string' || p.config === '') bad('config', p.config, 'the id of a software config (get_resource of an OS::Heat::SoftwareConfig)');
  if (isGroup(type)) {
    if (!isObj(p.servers)) bad('servers', p.servers, 'a mapping of server key to node');
    else for (const [k, v] of Object.entries(p.servers)) if (typeof v !== 'string' || v === '') bad(`servers.${k}`, v, 'a node name or uuid');
  } else if (typeof p.server !== 'string' || p.server === '') bad('server', p.server, 'a node name or uuid');
  if (p.input_values !== undefined && p.input_values !== null && !isObj(p.input_values)) bad('input_values', p.input_values, 'a mapping');
  if (p.actions !== undefined && p.actions !== null) {
    if (!Array.isArray(p.actions)) bad('actions', p.actions, `a list of ${ACTIONS.join(', ')}`);
    else p.actions.forEach((a, n) => { if (!ACTIONS.includes(a as string)) bad(`actions[${n}]`, a, `one of ${ACTIONS.join(', ')}`); });
  }
  if (p.name !== undefined && p.name !== null && typeof p.name !== 'string') bad('name', p.name, 'a string');
  if (isStructured(type)) {
    if (p.input_key !== undefined && (typeof p.input_key !== 'string' || p.input_key === '')) bad('input_key', p.input_key, 'a non-empty string');
    if (p.input_values_validate !== undefined && p.input_values_validate !== 'LAX' && p.input_values_validate !== 'STRICT') bad('input_values_validate', p.input_values_validate, 'LAX or STRICT');
  }
  return problems;
}

export function parseDeploymentProps(type: string, p: Record<string, unknown>): DeploymentProps {
  const problems = deploymentProblems(type, p);
  if (problems.length) throw new ResourceFailure(problems.join('; '), { problems });
  return {
    config: p.config as string,
    servers: isGroup(type) ? { ...(p.servers as Record<string, string>) } : { '': p.server as string },
    inputValues: { ...((p.input_values as Record<string, unknown> | null | undefined) ?? {}) },
    actions: (p.actions as string[] | null | undefined) ?? DEFAULT_ACTIONS,
    name: (p.name as string | null | undefined) ?? undefined,
    structured: isStructured(type) ? { inputKey: (p.input_key as string | undefined) ?? 'get_input', strict: p.input_values_validate === 'STRICT' } : undefined,
  };
}


