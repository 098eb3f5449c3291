import YAML from 'yaml';
import { OspError } from '../../common/errors.js';

export const STEPS = [1, 2, 3, 4, 5] as const;

/**
 * What the renderer must know of a service before the stack exists: the
 * shape of its role_data (which steps it has, what it reads and exports).
 * The values may use intrinsic functions; the engine resolves them.
 */
export interface ServiceShape {
  type: string;
  /** Bundle-relative template path. */
  template: string;
  serviceName: string;
  parameters: Set<string>;
  /** The template's parameter declarations (type, default, …) by name, as written. */
  parameterDecls: Map<string, Record<string, unknown>>;
  hasConfigSettings: boolean;
  hasStepInputValues: boolean;
  steps: number[];
  /** step → names from the renderer's vocabulary (all_hosts, <role>_node_ips, …). */
  stepInputs: Map<number, string[]>;
  /** output name → the step whose deployment writes it ($heat_outputs_path.<name>). */
  stepOutputs: Map<string, number>;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stepOf(at: string, key: unknown): number {
  const n = Number(key);
  if (!STEPS.includes(n as (typeof STEPS)[number])) throw new OspError('TEMPLATE_INVALID', `${at}: step ${JSON.stringify(key)}: expected one of 1-5`);
  return n;
}

/** Reads a service template's role_data shape; every problem names the file and the field. */
export function readServiceShape(type: string, template: string, text: string): ServiceShape {
  const bad = (msg: string) => new OspError('TEMPLATE_INVALID', `${template} (${type}): ${msg}`);
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw bad(`not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const value = isObj(doc) && isObj(doc.outputs) && isObj(doc.outputs.role_data) ? doc.outputs.role_data.value : undefined;
  if (!isObj(value)) throw bad('outputs.role_data.value: expected a mapping with service_name and step_config');
  if (typeof value.service_name !== 'string' || value.service_name === '') throw bad(`role_data.service_name ${JSON.stringify(value.service_name)}: expected a name`);
  const stepConfig = value.step_config ?? {};
  if (!isObj(stepConfig)) throw bad('role_data.step_config: expected a mapping of step (1-5) to a script');
  const steps = Object.keys(stepConfig).map((k) => stepOf(`${template}: role_data.step_config`, k)).sort();
  const stepInputs = new Map<number, string[]>();
  const rawInputs = value.step_inputs ?? {};
  if (!isObj(rawInputs)) throw bad('role_data.step_inputs: expected a mapping of step to a list of input names');
  for (const [k, v] of Object.entries(rawInputs)) {
    const step = stepOf(`${template}: role_data.step_inputs`, k);
    if (!steps.includes(step)) throw bad(`role_data.step_inputs: step ${step} has no step_config`);
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(`role_data.step_inputs.${k}: ${JSON.stringify(v)}: expected a list of names`);
    stepInputs.set(step, v as string[]);
  }
  const stepOutputs = new Map<string, number>();
  const rawOutputs = value.step_outputs ?? {};
  if (!isObj(rawOutputs)) throw bad('role_data.step_outputs: expected a mapping of output name to step');
  for (const [name, s] of Object.entries(rawOutputs)) {
    const step = stepOf(`${template}: role_data.step_outputs.${name}`, s);
    if (!steps.includes(step)) throw bad(`role_data.step_outputs.${name}: step ${step} has no step_config`);
    if (!/^[a-z][a-z0-9_]*$/.test(name)) throw bad(`role_data.step_outputs: ${JSON.stringify(name)}: expected a lower_case name`);
    stepOutputs.set(name, step);
  }
  return {
    type,
    template,
    serviceName: value.service_name,
    parameters: new Set(isObj(doc) && isObj(doc.parameters) ? Object.keys(doc.parameters) : []),
    parameterDecls: new Map(isObj(doc) && isObj(doc.parameters) ? Object.entries(doc.parameters).filter((e): e is [string, Record<string, unknown>] => isObj(e[1])) : []),
    hasConfigSettings: value.config_settings !== undefined,
    hasStepInputValues: value.step_input_values !== undefined,
    steps,
    stepInputs,
    stepOutputs,
  };
}
