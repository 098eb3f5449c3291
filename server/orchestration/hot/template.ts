import { readBundleText, type Bundle } from './bundle.js';
import { analyse, emptyAnalysis, type Analysis } from './analysis.js';
import { parseParameterSchemas, type ParameterSchema } from './parameters.js';
import { isObj, parseYaml, positionOf, valuePositionOf, type Obj } from './source.js';
import { problemAt, type HotProblem, type Position } from './problems.js';
import { allowsConditions, parseVersion, VERSION_NAMES, type HotVersion } from './versions.js';

/**
 * One HOT template file read from the bundle: its sections checked for shape
 * and every intrinsic function analysed, nothing evaluated yet.
 */
export interface ResourceDef {
  name: string;
  type: string;
  properties: Obj;
  metadata?: unknown;
  dependsOn: string[];
  condition?: unknown;
  deletionPolicy: 'Delete' | 'Retain' | 'Snapshot';
  updatePolicy?: unknown;
  externalId?: unknown;
  at: Position | undefined;
  typeAt: Position | undefined;
  /** Names referred to inside properties and metadata. */
  refs: Analysis;
}

export interface OutputDef {
  name: string;
  description?: string;
  value: unknown;
  condition?: unknown;
  at: Position | undefined;
  refs: Analysis;
}

export interface ParameterGroup { label?: string; description?: string; parameters: string[] }

export interface ParsedTemplate {
  path: string;
  version: HotVersion;
  description?: string;
  parameterGroups: ParameterGroup[];
  parameters: Map<string, ParameterSchema>;
  resources: Map<string, ResourceDef>;
  outputs: Map<string, OutputDef>;
  conditions: Map<string, { definition: unknown; at: Position | undefined; refs: Analysis }>;
}

const SECTIONS = new Set(['heat_template_version', 'description', 'parameter_groups', 'parameters', 'resources', 'outputs', 'conditions']);
const RESOURCE_KEYS = new Set(['type', 'properties', 'metadata', 'depends_on', 'update_policy', 'deletion_policy', 'external_id', 'condition']);
const OUTPUT_KEYS = new Set(['description', 'value', 'condition']);
const DELETION: Record<string, ResourceDef['deletionPolicy']> = { Delete: 'Delete', Retain: 'Retain', Snapshot: 'Snapshot', delete: 'Delete', retain: 'Retain', snapshot: 'Snapshot' };

/** Pseudo parameters every stack has (Heat's OS::stack_name, OS::stack_id, OS::project_id). */
export const PSEUDO_PARAMETERS = ['OS::stack_name', 'OS::stack_id', 'OS::project_id'];

export function loadTemplate(bundle: Bundle, path: string, problems: HotProblem[]): ParsedTemplate | undefined {
  const text = readBundleText(bundle, path);
  if (text === undefined) { problems.push(problemAt(undefined, path, 'template not in the template bundle')); return undefined; }
  const parsed = parseYaml(path, text);
  problems.push(...parsed.problems);
  const t = parsed.value;
  if (parsed.problems.length > 0 && t === undefined) return undefined;
  if (!isObj(t)) { problems.push(problemAt(positionOf(t), path, 'a template is a mapping with heat_template_version, parameters, resources, outputs')); return undefined; }
  const version = parseVersion(t.heat_template_version);
  if (!version) {
    problems.push(problemAt(t.heat_template_version === undefined ? positionOf(t) : valuePositionOf(t, 'heat_template_version'), path,
      t.heat_template_version === undefined ? 'heat_template_version is missing' : `heat_template_version ${JSON.stringify(t.heat_template_version)}: expected one of ${VERSION_NAMES.join(', ')}`));
    return undefined;
  }
  for (const k of Object.keys(t)) if (!SECTIONS.has(k)) problems.push(problemAt(positionOf(t, k), path, `The template section is invalid: ${k}`));
  if (t.conditions !== undefined && !allowsConditions(version)) problems.push(problemAt(positionOf(t, 'conditions'), path, `the conditions section needs heat_template_version 2016-10-14 (newton) or later`));
  const tmpl: ParsedTemplate = {
    path, version,
    description: typeof t.description === 'string' ? t.description : undefined,
    parameterGroups: [],
    parameters: parseParameterSchemas(path, t.parameters, version, problems),
    resources: new Map(), outputs: new Map(), conditions: new Map(),
  };
  tmpl.parameterGroups = parseGroups(path, t.parameter_groups, tmpl.parameters, problems);
  const opts = { version, file: path };
  section(path, t, 'conditions', problems, (name, def, holder) => {
    tmpl.conditions.set(name, { definition: def, at: positionOf(holder, name), refs: typeof def === 'boolean' ? emptyAnalysis() : analyse(def, { ...opts, condition: true }) });
  });
  section(path, t, 'resources', problems, (name, def, holder) => {
    const r = parseResource(path, name, def, positionOf(holder, name), problems, opts);
    if (r) tmpl.resources.set(name, r);
  });
  section(path, t, 'outputs', problems, (name, def, holder) => {
    const at = positionOf(holder, name);
    if (!isObj(def)) { problems.push(problemAt(at, path, `output "${name}": expected a mapping with "value"`)); return; }
    for (const k of Object.keys(def)) if (!OUTPUT_KEYS.has(k)) problems.push(problemAt(positionOf(def, k), path, `output "${name}": unknown key "${k}" (expected ${[...OUTPUT_KEYS].join(', ')})`));
    const refs = analyse(def.value, opts);
    if (def.condition !== undefined) analyse(def.condition, { ...opts, condition: true }, refs);
    tmpl.outputs.set(name, { name, description: typeof def.description === 'string' ? def.description : undefined, value: def.value, condition: def.condition, at, refs });
  });
  return tmpl;
}

function section(file: string, t: Obj, key: string, problems: HotProblem[], each: (name: string, def: unknown, holder: Obj) => void): void {
  const s = t[key];
  if (s === undefined || s === null) return;
  if (!isObj(s)) { problems.push(problemAt(positionOf(t, key), file, `${key}: expected a mapping`)); return; }
  for (const [name, def] of Object.entries(s)) each(name, def, s);
}

function parseResource(file: string, name: string, def: unknown, at: Position | undefined, problems: HotProblem[], opts: { version: HotVersion; file: string }): ResourceDef | undefined {
  const bad = (where: Position | undefined, m: string): void => void problems.push(problemAt(where ?? at, file, `resource "${name}": ${m}`));
  if (!isObj(def)) { bad(at, 'expected a mapping with "type"'); return undefined; }
  for (const k of Object.keys(def)) if (!RESOURCE_KEYS.has(k)) bad(positionOf(def, k), `unknown key "${k}" (expected ${[...RESOURCE_KEYS].join(', ')})`);
  if (typeof def.type !== 'string' || def.type === '') { bad(valuePositionOf(def, 'type'), 'type: expected a resource type name or a template file'); return undefined; }
  const properties = def.properties ?? {};
  if (!isObj(properties)) { bad(positionOf(def, 'properties'), 'properties: expected a mapping'); return undefined; }
  const dependsOn = typeof def.depends_on === 'string' ? [def.depends_on] : Array.isArray(def.depends_on) ? def.depends_on : def.depends_on === undefined || def.depends_on === null ? [] : undefined;
  if (!dependsOn || dependsOn.some((d) => typeof d !== 'string')) { bad(positionOf(def, 'depends_on'), 'depends_on: expected a resource name or a list of them'); return undefined; }
  const policy = def.deletion_policy === undefined ? 'Delete' : DELETION[String(def.deletion_policy)];
  if (!policy) bad(valuePositionOf(def, 'deletion_policy'), `deletion_policy ${JSON.stringify(def.deletion_policy)}: expected Delete, Retain or Snapshot`);
  const refs = analyse(properties, opts);
  if (def.metadata !== undefined) analyse(def.metadata, opts, refs);
  if (def.update_policy !== undefined) analyse(def.update_policy, opts, refs);
  if (def.condition !== undefined && !allowsConditions(opts.version)) bad(positionOf(def, 'condition'), 'condition needs heat_template_version 2016-10-14 (newton) or later');
  const condRefs = def.condition === undefined || typeof def.condition === 'boolean' ? undefined : analyse(def.condition, { ...opts, condition: true });
  if (condRefs) { refs.problems.push(...condRefs.problems); refs.conditions.push(...condRefs.conditions); refs.params.push(...condRefs.params); }
  return {
    name, type: def.type, properties, metadata: def.metadata, dependsOn: dependsOn as string[], condition: def.condition,
    deletionPolicy: policy ?? 'Delete', updatePolicy: def.update_policy, externalId: def.external_id,
    at, typeAt: valuePositionOf(def, 'type'), refs,
  };
}

function parseGroups(file: string, raw: unknown, params: Map<string, ParameterSchema>, problems: HotProblem[]): ParameterGroup[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) { problems.push(problemAt(positionOf(raw), file, 'parameter_groups: expected a list of groups')); return []; }
  const seen = new Set<string>();
  const out: ParameterGroup[] = [];
  for (const g of raw) {
    if (!isObj(g) || !Array.isArray(g.parameters)) { problems.push(problemAt(positionOf(g) ?? positionOf(raw), file, 'parameter_groups: each group needs a "parameters" list')); continue; }
    g.parameters.forEach((p, i) => {
      const at = positionOf(g.parameters, i);
      if (typeof p !== 'string' || !params.has(p)) problems.push(problemAt(at, file, `The grouped parameter ${String(p)} does not reference a valid parameter.`));
      else if (seen.has(p)) problems.push(problemAt(at, file, `The ${p} parameter must be assigned to one parameter group only.`));
      else seen.add(p);
    });
    out.push({ label: typeof g.label === 'string' ? g.label : undefined, description: typeof g.description === 'string' ? g.description : undefined, parameters: g.parameters.map(String) });
  }
  return out;
}
