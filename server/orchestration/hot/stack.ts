import { readBundleText, resolveInBundle, type Bundle } from './bundle.js';
import { loadEnvironments, isTemplateName, mapType, type EnvValue, type Environment } from './environment.js';
import { evaluateCondition, resolve, type ResolveContext } from './functions.js';
import { creationLevels, deletionLevels, findCycle, formatCycle, type Dependencies } from './graph.js';
import { hiddenParameterNames, validateParameterValue } from './parameters.js';
import { formatProblem, hotProblemsOf, problemAt, templateInvalid, type HotProblem, type Position } from './problems.js';
import { loadTemplate, PSEUDO_PARAMETERS, type OutputDef, type ParsedTemplate, type ResourceDef } from './template.js';
import type { Analysis } from './analysis.js';

/**
 * A stack request checked whole: the template tree, the merged environment,
 * the parameter values, the conditions, every resource's type, references and
 * the dependency order. Every problem is collected (nothing stops at the
 * first); a stack comes back only when there are none.
 */
export interface StackRequest {
  /** The top-level template's path in the bundle. */
  template: string;
  /** Environment files in the bundle, in `-e` order. */
  environments?: string[];
  /** `--parameter K=V` values (strings, converted per the parameter's type). */
  parameters?: Record<string, unknown>;
}

export interface StackOptions {
  /** Resource types the engine implements; a type outside it (not mapped to a template) is refused. Omitted: not checked. */
  knownTypes?: ReadonlySet<string>;
  /** The attributes of a type, to check get_attr; undefined: not known, not checked. */
  attributesOf?: (type: string) => readonly string[] | undefined;
  stackName?: string;
  /** Nested template depth allowed below the top (Heat's max_nested_stack_depth is 5; TripleO raises it). */
  maxNestingDepth?: number;
}

export interface LoadedResource {
  name: string;
  def: ResourceDef;
  /** The type after the resource registry (the template's path for a nested stack). */
  type: string;
  nested?: { path: string; template: ParsedTemplate; stack: LoadedStack };
  dependsOn: ReadonlySet<string>;
}

export interface LoadedStack {
  bundle: Bundle;
  template: ParsedTemplate;
  environment: Environment;
  /** Typed parameter values; a nested stack's value not known before its parent runs is UNKNOWN. */
  parameters: Record<string, unknown>;
  hiddenParameters: string[];
  conditions: Record<string, boolean>;
  /** Resources whose condition holds. */
  resources: Map<string, LoadedResource>;
  outputs: Map<string, OutputDef>;
  dependencies: Dependencies;
  createLevels: string[][];
  deleteLevels: string[][];
}

export interface ValidationResult {
  problems: HotProblem[];
  notes: string[];
  stack?: LoadedStack;
}

/** A value only known once resources exist (a nested stack's property built from get_attr). */
export const UNKNOWN: unique symbol = Symbol('unknown until resources exist');
class Unknown extends Error {}

const OS_HEAT_NONE = 'OS::Heat::None';
const COMMAND_LINE = '--parameter';

export function validateStack(bundle: Bundle, req: StackRequest, opts: StackOptions = {}): ValidationResult {
  const problems: HotProblem[] = [];
  const env = loadEnvironments(bundle, req.environments ?? [], problems);
  const tmpl = loadTemplate(bundle, req.template, problems);
  if (!tmpl) return finish(problems, env);
  const inputs = new Map<string, EnvValue>(env.parameters);
  for (const [k, v] of Object.entries(req.parameters ?? {})) inputs.set(k, { value: v, at: { file: `${COMMAND_LINE} ${k}`, line: 1, column: 1 } });
  for (const [k, v] of inputs) {
    if (!tmpl.parameters.has(k)) problems.push(problemAt(v.at, req.template, `The Parameter (${k}) was not defined in template.`));
  }
  const loader = new Loader(bundle, env, opts, problems);
  const stack = loader.instantiate(tmpl, inputs, [], opts.stackName ?? 'stack');
  return finish(problems, env, stack);
}

/**
 * A nested stack with its properties resolved (at create or update time):
 * validated again with the real values, as a stack of its own.
 */
export function loadNestedStack(parent: LoadedStack, resource: LoadedResource, properties: Record<string, unknown>, opts: StackOptions = {}): ValidationResult {
  if (!resource.nested) throw new Error(`resource ${resource.name} is not a nested stack`);
  const problems: HotProblem[] = [];
  const inputs = new Map<string, EnvValue>(Object.entries(properties).map(([k, v]) => [k, { value: v, at: resource.def.at }]));
  const stack = new Loader(parent.bundle, parent.environment, opts, problems).instantiate(resource.nested.template, inputs, [parent.template.path], `${opts.stackName ?? 'stack'}-${resource.name}`);
  return finish(problems, parent.environment, stack);
}

function finish(problems: HotProblem[], env: Environment, stack?: LoadedStack): ValidationResult {
  const seen = new Set<string>();
  const unique = problems.filter((p) => { const k = formatProblem(p); if (seen.has(k)) return false; seen.add(k); return true; });
  // Files in the order their first problem was found, each file's problems top to bottom.
  const fileOrder = [...new Set(unique.map((p) => p.file))];
  unique.sort((a, b) => fileOrder.indexOf(a.file) - fileOrder.indexOf(b.file) || a.line - b.line || a.column - b.column);
  return { problems: unique, notes: env.notes, stack: unique.length === 0 ? stack : undefined };
}

/**
 * The context to evaluate a loaded stack's values with: parameters,
 * conditions and files from the stack, resources from the engine.
 */
export function stackContext(stack: LoadedStack, live: Pick<ResolveContext, 'resourceRef' | 'attr'>): ResolveContext {
  const t = stack.template;
  return {
    version: t.version, file: t.path,
    param(name) {
      if (!Object.hasOwn(stack.parameters, name)) throw templateInvalid([problemAt(undefined, t.path, `get_param: the template has no parameter "${name}"`)]);
      const v = stack.parameters[name];
      if (v === UNKNOWN) throw new Unknown(name);
      return v;
    },
    condition(name) {
      if (!Object.hasOwn(stack.conditions, name)) throw new Unknown(name);
      return stack.conditions[name];
    },
    file_: (ref) => readFileRef(stack.bundle, t.path, ref) ?? '',
    ...live,
  };
}

function readFileRef(bundle: Bundle, from: string, ref: string): string | undefined {
  const p = resolveInBundle(from, ref);
  return p === undefined ? undefined : readBundleText(bundle, p);
}

class Loader {
  private readonly templates = new Map<string, ParsedTemplate | undefined>();
  constructor(private readonly bundle: Bundle, private readonly env: Environment, private readonly opts: StackOptions, private readonly problems: HotProblem[]) {}

  private template(path: string): ParsedTemplate | undefined {
    if (!this.templates.has(path)) this.templates.set(path, loadTemplate(this.bundle, path, this.problems));
    return this.templates.get(path);
  }

  private push(at: Position | undefined, file: string, message: string): void {
    this.problems.push(problemAt(at, file, message));
  }

  instantiate(tmpl: ParsedTemplate, inputs: Map<string, EnvValue | { value: typeof UNKNOWN; at: Position | undefined }>, chain: string[], stackName: string): LoadedStack {
    const file = tmpl.path;
    const parameters: Record<string, unknown> = { 'OS::stack_name': stackName, 'OS::stack_id': UNKNOWN, 'OS::project_id': UNKNOWN };
    for (const [name, schema] of tmpl.parameters) {
      const given = inputs.get(name) ?? this.env.parameterDefaults.get(name);
      const at = given?.at ?? schema.at;
      if (given?.value === UNKNOWN) { parameters[name] = UNKNOWN; continue; }
      const raw = given?.value ?? schema.default;
      if (raw === undefined || raw === null) { this.push(at, file, `The Parameter (${name}) was not provided.`); parameters[name] = UNKNOWN; continue; }
      const r = validateParameterValue(schema, raw);
      if ('error' in r) { this.push(given?.at, file, r.error); parameters[name] = UNKNOWN; } else parameters[name] = r.value;
    }
    const stack: LoadedStack = {
      bundle: this.bundle, template: tmpl, environment: this.env, parameters, hiddenParameters: hiddenParameterNames(tmpl.parameters),
      conditions: {}, resources: new Map(), outputs: new Map(), dependencies: new Map(), createLevels: [], deleteLevels: [],
    };
    const unknownDeps = (): never => { throw new Unknown('resource'); };
    const ctx = stackContext(stack, { resourceRef: unknownDeps, attr: unknownDeps });
    const conditions = this.evaluateConditions(tmpl, ctx);
    stack.conditions = Object.fromEntries([...conditions].filter(([, v]) => v !== undefined)) as Record<string, boolean>;
    const active = (c: unknown): boolean => {
      if (c === undefined) return true;
      try { return evaluateCondition(c, ctx); } catch (e) { if (e instanceof Unknown) return true; throw e; }
    };

    for (const r of tmpl.resources.values()) {
      this.checkRefs(tmpl, r.refs, `resources.${r.name}`);
      for (const d of r.dependsOn) if (!tmpl.resources.has(d)) this.push(r.at, file, `resource "${r.name}": depends_on "${d}": no such resource in the template`);
      if (!this.safely(file, () => active(r.condition))) continue;
      const loaded = this.resolveType(tmpl, r, chain, ctx, stackName);
      if (!loaded) continue;
      stack.resources.set(r.name, loaded);
    }
    for (const o of tmpl.outputs.values()) {
      this.checkRefs(tmpl, o.refs, `outputs.${o.name}`);
      if (this.safely(file, () => active(o.condition))) stack.outputs.set(o.name, o);
    }
    for (const r of stack.resources.values()) this.checkAttributes(tmpl, r.def.refs, stack);
    for (const o of stack.outputs.values()) this.checkAttributes(tmpl, o.refs, stack);

    const deps = new Map<string, Set<string>>();
    for (const r of stack.resources.values()) deps.set(r.name, r.dependsOn as Set<string>);
    stack.dependencies = deps;
    const cycle = findCycle(deps);
    if (cycle) this.push(tmpl.resources.get(cycle[0])?.at, file, `Circular Dependency Found: ${formatCycle(cycle)}`);
    else { stack.createLevels = creationLevels(deps); stack.deleteLevels = deletionLevels(deps); }
    return stack;
  }

  /** Evaluates a condition; a template problem inside becomes a problem (and counts as true). */
  private safely(file: string, f: () => boolean): boolean {
    try { return f(); } catch (e) { this.collect(e, file); return true; }
  }

  /** A failure while evaluating at validation time: a value not known yet is fine, anything else is a problem. */
  private collect(e: unknown, file: string): void {
    if (e instanceof Unknown) return;
    const placed = hotProblemsOf(e);
    if (placed) this.problems.push(...placed);
    else this.push(undefined, file, (e as Error).message);
  }

  private evaluateConditions(tmpl: ParsedTemplate, ctx: ResolveContext): Map<string, boolean | undefined> {
    const out = new Map<string, boolean | undefined>();
    const evaluating: string[] = [];
    const cctx: ResolveContext = {
      ...ctx,
      condition: (name) => {
        if (out.has(name)) { const v = out.get(name); if (v === undefined) throw new Unknown(name); return v; }
        const def = tmpl.conditions.get(name);
        if (!def) throw new Unknown(name);
        if (evaluating.includes(name)) {
          this.push(def.at, tmpl.path, `conditions refer to each other in a loop: ${[...evaluating.slice(evaluating.indexOf(name)), name].join(' -> ')}`);
          out.set(name, undefined);
          throw new Unknown(name);
        }
        evaluating.push(name);
        try {
          const v = evaluateCondition(def.definition, cctx);
          out.set(name, v);
          return v;
        } catch (e) {
          out.set(name, undefined);
          if (e instanceof Unknown) throw e;
          this.collect(e, tmpl.path);
          throw new Unknown(name);
        } finally { evaluating.pop(); }
      },
    };
    for (const [name, def] of tmpl.conditions) {
      for (const p of def.refs.problems) this.problems.push(p);
      for (const c of def.refs.conditions) if (!tmpl.conditions.has(c.name)) this.push(c.at, tmpl.path, `condition "${name}": no condition named "${c.name}" in the conditions section`);
      for (const p of def.refs.params) if (!tmpl.parameters.has(p.name) && !PSEUDO_PARAMETERS.includes(p.name)) this.push(p.at, tmpl.path, `get_param: the template has no parameter "${p.name}"`);
      try { cctx.condition(name); } catch (e) { if (!(e instanceof Unknown)) throw e; }
    }
    return out;
  }

  private checkRefs(tmpl: ParsedTemplate, refs: Analysis, where: string): void {
    const file = tmpl.path;
    this.problems.push(...refs.problems);
    for (const p of refs.params) if (!tmpl.parameters.has(p.name) && !PSEUDO_PARAMETERS.includes(p.name)) this.push(p.at, file, `get_param: the template has no parameter "${p.name}"`);
    for (const r of [...refs.resources, ...refs.attrs]) if (!tmpl.resources.has(r.name)) this.push(r.at, file, `The specified reference "${r.name}" (in ${where}) is incorrect.`);
    for (const c of refs.conditions) if (!tmpl.conditions.has(c.name)) this.push(c.at, file, `no condition named "${c.name}" in the conditions section (in ${where})`);
    for (const f of refs.files) {
      const p = resolveInBundle(file, f.name);
      if (p === undefined) this.push(f.at, file, `get_file: ${f.name} is outside the template bundle (absolute paths, URLs and ../ above the bundle are refused)`);
      else if (!this.bundle.files.has(p)) this.push(f.at, file, `get_file: ${f.name} (${p}) is not in the template bundle`);
    }
  }

  private checkAttributes(tmpl: ParsedTemplate, refs: Analysis, stack: LoadedStack): void {
    for (const a of refs.attrs) {
      if (a.attribute === undefined) continue;
      const target = stack.resources.get(a.name);
      if (!target) continue;
      const attrs = target.nested ? [...target.nested.template.outputs.keys(), 'OS::stack_id'] : this.opts.attributesOf?.(target.type);
      if (attrs && !attrs.includes(a.attribute)) {
        this.push(a.at, tmpl.path, `The Referenced Attribute (${a.name} ${a.attribute}) is incorrect. (${target.type} has ${attrs.join(', ') || 'no attributes'})`);
      }
    }
  }

  private resolveType(tmpl: ParsedTemplate, r: ResourceDef, chain: string[], ctx: ResolveContext, stackName: string): LoadedResource | undefined {
    const file = tmpl.path;
    const dependsOn = new Set([...r.dependsOn, ...r.refs.resources.map((x) => x.name), ...r.refs.attrs.map((x) => x.name)].filter((n) => tmpl.resources.has(n)));
    let path: string | undefined;
    let type = r.type;
    if (isTemplateName(r.type)) {
      path = resolveInBundle(file, r.type);
      if (path === undefined) { this.push(r.typeAt, file, `resource "${r.name}": type ${r.type} is outside the template bundle`); return undefined; }
    } else {
      const m = mapType(this.env, r.type, r.name);
      if (m.kind === 'loop') { this.push(r.typeAt, file, `resource "${r.name}": resource_registry maps ${r.type} in a loop: ${m.chain.join(' -> ')}`); return undefined; }
      if (m.kind === 'template') path = m.path;
      else {
        type = m.type;
        if (type !== OS_HEAT_NONE && this.opts.knownTypes && !this.opts.knownTypes.has(type)) {
          this.push(r.typeAt, file, `The Resource Type (${type}) could not be found.${type !== r.type ? ` (resource_registry maps ${r.type} to it)` : ''}`);
          return undefined;
        }
      }
    }
    if (path === undefined) return { name: r.name, def: r, type, dependsOn };
    if (!this.bundle.files.has(path)) { this.push(r.typeAt, file, `resource "${r.name}": template ${path} is not in the template bundle`); return undefined; }
    if (chain.includes(path) || path === tmpl.path) { this.push(r.typeAt, file, `resource "${r.name}": nested template ${path} includes itself (${[...chain, tmpl.path, path].join(' -> ')})`); return undefined; }
    const max = this.opts.maxNestingDepth ?? 10;
    if (chain.length >= max) { this.push(r.typeAt, file, `resource "${r.name}": nested templates deeper than ${max} levels`); return undefined; }
    const nested = this.template(path);
    if (!nested) return undefined;
    const inputs = new Map<string, EnvValue | { value: typeof UNKNOWN; at: Position | undefined }>();
    for (const [k, v] of Object.entries(r.properties)) {
      const at = r.at;
      if (!nested.parameters.has(k)) { this.push(at, file, `resource "${r.name}": Unknown Property ${k} (template ${path} has no parameter "${k}")`); continue; }
      try { inputs.set(k, { value: resolve(v, ctx), at }); } catch (e) {
        this.collect(e, file);
        inputs.set(k, { value: UNKNOWN, at });
      }
    }
    const stack = this.instantiate(nested, inputs, [...chain, tmpl.path], `${stackName}-${r.name}`);
    return { name: r.name, def: r, type: path, nested: { path, template: nested, stack }, dependsOn };
  }
}
