import { readBundleText, resolveInBundle, type Bundle } from './bundle.js';
import { isObj, parseYaml, positionOf, valuePositionOf } from './source.js';
import { problemAt, type HotProblem, type Position } from './problems.js';

/**
 * Environment files (`-e`), merged in the order given. The rules, from Heat's
 * environment documentation (template_guide/environment.rst) and
 * python-heatclient's merge of several `-e` files:
 *
 * - `parameters`: values for the top-level template only; a later file's key
 *   replaces an earlier one's; `--parameter K=V` replaces both.
 * - `parameter_defaults`: a default for every template in the tree (top and
 *   nested) that declares a parameter of that name; later files win per key.
 *   A name no template declares is not an error (that is their purpose).
 * - `resource_registry`: type -> template file (relative to the environment
 *   file's folder, inside the bundle) or another type (`OS::Heat::None`);
 *   `A::*: B::*` wildcards; `resources: {<resource name>: {type: target}}`
 *   maps for one resource only. Later files win per key, per resource.
 * - `encrypted_param_names` is written by Heat itself: ignored.
 * - `event_sinks` (Zaqar queues) has no meaning in osp: ignored, with a note.
 * - `parameter_merge_strategies` (merge instead of replace) is refused: osp
 *   only replaces, and silently doing so would change the values.
 * - Anything else is refused, as Heat refuses an unknown section.
 */
export interface RegistryEntry {
  /** A type name, or a bundle path when `template` is true. */
  target: string;
  template: boolean;
  at: Position | undefined;
}

export interface EnvValue {
  value: unknown;
  at: Position | undefined;
}

export interface Environment {
  parameters: Map<string, EnvValue>;
  parameterDefaults: Map<string, EnvValue>;
  registry: Map<string, RegistryEntry>;
  /** Per resource name: type -> target for that resource only. */
  resourceRegistry: Map<string, Map<string, RegistryEntry>>;
  notes: string[];
}

export const emptyEnvironment = (): Environment => ({ parameters: new Map(), parameterDefaults: new Map(), registry: new Map(), resourceRegistry: new Map(), notes: [] });

const SECTIONS = new Set(['parameters', 'parameter_defaults', 'resource_registry', 'encrypted_param_names', 'event_sinks', 'parameter_merge_strategies']);

/** Heat's test for a registry value naming a template rather than a type. */
export const isTemplateName = (s: string): boolean => /\.(ya?ml|template)$/.test(s) || s.includes('/');

/** Reads the environment files in order and merges them (later files win). */
export function loadEnvironments(bundle: Bundle, files: string[], problems: HotProblem[]): Environment {
  const env = emptyEnvironment();
  for (const f of files) mergeEnvironmentFile(bundle, f, env, problems);
  return env;
}

function registryEntry(bundle: Bundle, file: string, holder: Record<string, unknown>, key: string, problems: HotProblem[]): RegistryEntry | undefined {
  const v = holder[key];
  const at = valuePositionOf(holder, key);
  if (typeof v !== 'string') {
    problems.push(problemAt(at, file, `resource_registry: "${key}": expected a type name or a template file; got ${JSON.stringify(v)}`));
    return undefined;
  }
  if (!isTemplateName(v)) return { target: v, template: false, at };
  const p = resolveInBundle(file, v);
  if (p === undefined) {
    problems.push(problemAt(at, file, `resource_registry: "${key}": ${v} is outside the template bundle (absolute paths, URLs and ../ above the bundle are refused)`));
    return undefined;
  }
  if (!bundle.files.has(p)) {
    problems.push(problemAt(at, file, `resource_registry: "${key}": ${v} (${p}) is not in the template bundle`));
    return undefined;
  }
  return { target: p, template: true, at };
}

export function mergeEnvironmentFile(bundle: Bundle, file: string, env: Environment, problems: HotProblem[]): void {
  const text = readBundleText(bundle, file);
  if (text === undefined) { problems.push(problemAt(undefined, file, 'environment file not in the template bundle')); return; }
  const parsed = parseYaml(file, text);
  problems.push(...parsed.problems);
  const doc = parsed.value;
  if (doc === null || doc === undefined) return;
  if (!isObj(doc)) { problems.push(problemAt(positionOf(doc), file, 'an environment is a mapping of sections (parameters, parameter_defaults, resource_registry)')); return; }
  for (const [section, body] of Object.entries(doc)) {
    const at = positionOf(doc, section);
    if (!SECTIONS.has(section)) { problems.push(problemAt(at, file, `environment has wrong section "${section}" (expected ${[...SECTIONS].join(', ')})`)); continue; }
    if (body === null) continue;
    if (section === 'encrypted_param_names') continue;
    if (section === 'event_sinks') { env.notes.push(`${file}: event_sinks ignored: osp publishes stack events on MQTT (osp/stacks/<stack>/events)`); continue; }
    if (section === 'parameter_merge_strategies') { problems.push(problemAt(at, file, 'parameter_merge_strategies is not supported: in osp a later environment file replaces a parameter value')); continue; }
    if (!isObj(body)) { problems.push(problemAt(at, file, `${section}: expected a mapping`)); continue; }
    if (section === 'parameters' || section === 'parameter_defaults') {
      const into = section === 'parameters' ? env.parameters : env.parameterDefaults;
      for (const [k, v] of Object.entries(body)) into.set(k, { value: v, at: positionOf(body, k) });
      continue;
    }
    for (const key of Object.keys(body)) {
      if (key === 'resources') { mergeResourceOverrides(bundle, file, body.resources, env, problems); continue; }
      if (key === 'base_url') { problems.push(problemAt(positionOf(body, key), file, 'resource_registry: base_url is not supported: name templates relative to the environment file')); continue; }
      const e = registryEntry(bundle, file, body, key, problems);
      if (!e) continue;
      if (key.endsWith('*') !== e.target.endsWith('*')) { problems.push(problemAt(e.at, file, `resource_registry: "${key}": a wildcard maps to a wildcard (A::* -> B::*)`)); continue; }
      env.registry.set(key, e);
    }
  }
}

function mergeResourceOverrides(bundle: Bundle, file: string, body: unknown, env: Environment, problems: HotProblem[]): void {
  if (!isObj(body)) { problems.push(problemAt(positionOf(body), file, 'resource_registry: resources: expected {<resource name>: {<type>: <target>}}')); return; }
  for (const [res, map] of Object.entries(body)) {
    if (!isObj(map)) { problems.push(problemAt(positionOf(body, res), file, `resource_registry: resources: ${res}: expected a mapping`)); continue; }
    const into = env.resourceRegistry.get(res) ?? new Map<string, RegistryEntry>();
    for (const key of Object.keys(map)) {
      if (key === 'hooks' || key === 'restricted_actions') {
        problems.push(problemAt(positionOf(map, key), file, `resource_registry: resources: ${res}: ${key} is not supported by osp`));
        continue;
      }
      const e = registryEntry(bundle, file, map, key, problems);
      if (e) into.set(key, e);
    }
    env.resourceRegistry.set(res, into);
  }
}

export type MappedType = { kind: 'type'; type: string } | { kind: 'template'; path: string };

/**
 * What a resource's type means after the registry: the resource's own
 * overrides first, then exact names, then the longest matching wildcard;
 * chains (A -> B -> file) are followed. A type no entry maps is itself.
 */
export function mapType(env: Environment, type: string, resourceName?: string): MappedType | { kind: 'loop'; chain: string[] } {
  const chain = [type];
  let cur = type;
  for (let i = 0; i < 16; i++) {
    const own = resourceName !== undefined ? env.resourceRegistry.get(resourceName)?.get(cur) : undefined;
    const e = own ?? env.registry.get(cur) ?? wildcard(env, cur);
    if (!e) return { kind: 'type', type: cur };
    if (e.template) return { kind: 'template', path: e.target };
    if (e.target === cur) return { kind: 'type', type: cur };
    cur = e.target;
    if (chain.includes(cur)) return { kind: 'loop', chain: [...chain, cur] };
    chain.push(cur);
  }
  return { kind: 'loop', chain };
}

function wildcard(env: Environment, type: string): RegistryEntry | undefined {
  let best: [string, RegistryEntry] | undefined;
  for (const [k, e] of env.registry) {
    if (!k.endsWith('*')) continue;
    const prefix = k.slice(0, -1);
    if (type.startsWith(prefix) && (!best || prefix.length > best[0].length)) best = [prefix, e];
  }
  if (!best) return undefined;
  return { ...best[1], target: best[1].target.slice(0, -1) + type.slice(best[0].length) };
}
