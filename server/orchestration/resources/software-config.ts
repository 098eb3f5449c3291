import { shownValue } from '../../../common/errors.js';
import { isObj } from '../hot/source.js';
import { randomUUID } from 'node:crypto';
import type { Database } from '../../store/db.js';
import { softwareConfigStore, type ConfigInput, type ConfigOutput, type SoftwareConfigRow } from '../../store/software-configs.js';
import { ResourceFailure, type ResourceContext, type ResourcePlugin } from '../engine/contract.js';

/**
 * OS::Heat::SoftwareConfig and OS::Heat::StructuredConfig.
 *
 * Groups the agent runs: `script` (the config is an executable body) and
 * `apply-config` (a JSON object merged into the agent's config data;
 * TripleO's `os-apply-config` is accepted as its other name). `Heat::Ungrouped`
 * (Heat's default, also written `ungrouped`) has no hook of its own in Heat:
 * os-apply-config consumed the data. So here ungrouped structured data (or
 * text that is a JSON object) becomes `apply-config`, and ungrouped text that
 * starts with `#!` becomes `script`; anything else is refused at validation
 * rather than failing later on the node. Other Heat groups (puppet, ansible,
 * hiera, …) are refused: no agent hook exists for them.
 */

export const SOFTWARE_CONFIG = 'OS::Heat::SoftwareConfig';
export const STRUCTURED_CONFIG = 'OS::Heat::StructuredConfig';

const UNGROUPED = new Set(['Heat::Ungrouped', 'ungrouped']);
const APPLY_CONFIG = new Set(['apply-config', 'os-apply-config']);
const INPUT_TYPES = ['String', 'Number', 'CommaDelimitedList', 'Json', 'Boolean'];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface SoftwareConfigData {
  [key: string]: unknown;
  id: string;
  /** Kept beside the stored row so get_attr needs no store read (the engine reads attributes synchronously). */
  config: unknown;
}

export type AgentGroup = 'script' | 'apply-config';

/** The agent group a config runs as, or a problem line; see the top of this file for ungrouped. */
export function agentGroup(group: string, config: unknown): AgentGroup | { problem: string } {
  if (group === 'script') {
    return typeof config === 'string' && config.length > 0 ? 'script' : { problem: `property 'config': group 'script' needs the config as non-empty text` };
  }
  if (APPLY_CONFIG.has(group) || UNGROUPED.has(group)) {
    if (isObj(config) || (typeof config === 'string' && isObj(parseJson(config)))) return 'apply-config';
    if (UNGROUPED.has(group) && typeof config === 'string' && config.startsWith('#!')) return 'script';
    const expected = UNGROUPED.has(group) ? 'a mapping (or JSON object text) for apply-config, or a script starting with #!' : 'a mapping (or JSON object text)';
    return { problem: `property 'config': ${shownValue(config)}: group '${group}' expected ${expected}` };
  }
  return { problem: `property 'group': ${shownValue(group)}: expected one of script, apply-config, os-apply-config, Heat::Ungrouped (no agent hook runs other groups)` };
}

/** Before resources exist, values that need them are a symbol (hot/stack.ts UNKNOWN): only what is known is checked. */
const unknownYet = (v: unknown): boolean => typeof v === 'symbol';

function validateConfig(type: string, p: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const group = p.group ?? 'Heat::Ungrouped';
  const config = p.config;
  if (typeof group !== 'string' && !unknownYet(group)) problems.push(`property 'group': ${shownValue(group)}: expected a string`);
  if (unknownYet(config) || unknownYet(group)) {
    // Checked at create, when both are known.
  } else if (type === STRUCTURED_CONFIG && config !== undefined && config !== null && !isObj(config)) {
    problems.push(`property 'config': ${shownValue(config)}: expected a mapping`);
  } else if (type === SOFTWARE_CONFIG && config !== undefined && config !== null && typeof config !== 'string') {
    problems.push(`property 'config': ${shownValue(config)}: expected a string`);
  } else if (typeof group === 'string') {
    const g = agentGroup(group, config ?? (type === STRUCTURED_CONFIG ? {} : ''));
    if (typeof g !== 'string') problems.push(g.problem);
  }
  problems.push(...validateList('inputs', p.inputs, (i, at) => {
    const out: string[] = [];
    if (!unknownYet(i.name) && (typeof i.name !== 'string' || !ENV_NAME.test(i.name))) out.push(`property '${at}.name': ${shownValue(i.name)}: expected a name usable as an environment variable`);
    if (i.type !== undefined && !unknownYet(i.type) && !INPUT_TYPES.includes(i.type as string)) out.push(`property '${at}.type': ${shownValue(i.type)}: expected one of ${INPUT_TYPES.join(', ')}`);
    if (i.description !== undefined && !unknownYet(i.description) && typeof i.description !== 'string') out.push(`property '${at}.description': ${shownValue(i.description)}: expected a string`);
    return out;
  }));
  problems.push(...validateList('outputs', p.outputs, (o, at) => {
    const out: string[] = [];
    if (unknownYet(o.name)) {
      // Checked at create.
    } else if (typeof o.name !== 'string' || o.name === '') out.push(`property '${at}.name': ${shownValue(o.name)}: expected a non-empty string`);
    else if (o.name.startsWith('deploy_')) out.push(`property '${at}.name': ${shownValue(o.name)}: names starting with deploy_ are Heat's own outputs`);
    if (o.error_output !== undefined && !unknownYet(o.error_output) && typeof o.error_output !== 'boolean') out.push(`property '${at}.error_output': ${shownValue(o.error_output)}: expected a boolean`);
    return out;
  }));
  if (p.options !== undefined && p.options !== null && !unknownYet(p.options) && !isObj(p.options)) problems.push(`property 'options': ${shownValue(p.options)}: expected a mapping`);
  return problems;
}

function validateList(field: string, v: unknown, each: (item: Record<string, unknown>, at: string) => string[]): string[] {
  if (v === undefined || v === null || unknownYet(v)) return [];
  if (!Array.isArray(v)) return [`property '${field}': ${shownValue(v)}: expected a list`];
  return v.flatMap((item, n) => {
    if (unknownYet(item)) return [];
    return isObj(item) ? each(item, `${field}[${n}]`) : [`property '${field}[${n}]': ${shownValue(item)}: expected a mapping`];
  });
}

function configPlugin(type: string, db: Database): ResourcePlugin<SoftwareConfigData> {
  return {
    type,
    attributes: ['config'],
    // Heat keeps configs immutable: any change is a new config with a new id.
    replaceOn: '*',
    validate: (p) => validateConfig(type, p),
    async create(ctx: ResourceContext, p: Record<string, unknown>): Promise<SoftwareConfigData> {
      const problems = validateConfig(type, p);
      if (problems.length) throw new ResourceFailure(problems.join('; '), { problems });
      const row: SoftwareConfigRow = {
        id: randomUUID(),
        stackId: ctx.stack.id,
        resourceName: ctx.name,
        type,
        group: (p.group as string | undefined) ?? 'Heat::Ungrouped',
        config: p.config ?? (type === STRUCTURED_CONFIG ? {} : ''),
        inputs: ((p.inputs as ConfigInput[] | undefined) ?? []).map((i) => ({ ...i, type: i.type ?? 'String' })),
        outputs: (p.outputs as ConfigOutput[] | undefined) ?? [],
        options: (p.options as Record<string, unknown> | undefined) ?? null,
        createdAt: new Date().toISOString(),
      };
      await softwareConfigStore.insert(db, row);
      return { id: row.id, config: row.config };
    },
    update(): Promise<SoftwareConfigData> {
      throw new Error(`${type} is replaced on every change; the engine must not update it in place`);
    },
    async delete(_ctx, data) {
      if (data) await softwareConfigStore.delete(db, data.id);
    },
    async check(_ctx, data) {
      if (!(await softwareConfigStore.get(db, data.id))) throw new ResourceFailure(`software config ${data.id} is missing from the store`, { config: data.id });
    },
    reference: (data) => data.id,
    attribute: (data, name) => (name === 'config' ? data.config : undefined),
  };
}

export function softwareConfigPlugins(db: Database): ResourcePlugin<SoftwareConfigData>[] {
  return [SOFTWARE_CONFIG, STRUCTURED_CONFIG].map((type) => configPlugin(type, db));
}


function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

