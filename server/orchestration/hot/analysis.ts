import { isObj, positionOf, type Obj } from './source.js';
import { problemAt, type HotProblem, type Position } from './problems.js';
import { allowsGetAttrAll, allowsRepeatPermutations, allowsTwoArgumentIf, classifyKey, type HotVersion } from './versions.js';

/**
 * Static analysis of a template value before anything is evaluated: every
 * intrinsic function is one the version allows and osp evaluates, with
 * arguments of the right shape, and every name it refers to (parameters,
 * resources, conditions, files) is collected with its position so the
 * template loader can check it.
 */
export interface Reference { name: string; at: Position | undefined }
export interface AttrReference extends Reference { attribute?: string }

export interface Analysis {
  problems: HotProblem[];
  params: Reference[];
  resources: Reference[];
  attrs: AttrReference[];
  conditions: Reference[];
  files: Reference[];
}

export interface AnalysisOptions {
  version: HotVersion;
  file: string;
  /** Analyse as a condition (the conditions section, `condition:`). */
  condition?: boolean;
}

export function emptyAnalysis(): Analysis {
  return { problems: [], params: [], resources: [], attrs: [], conditions: [], files: [] };
}

/** A one-key mapping's function name, when that is how the value reads. */
export function functionCall(v: unknown): { fn: string; args: unknown } | undefined {
  if (!isObj(v)) return undefined;
  const keys = Object.keys(v);
  return keys.length === 1 ? { fn: keys[0], args: v[keys[0]] } : undefined;
}

export function analyse(value: unknown, opts: AnalysisOptions, into: Analysis = emptyAnalysis()): Analysis {
  walk(value, opts, into, opts.condition ?? false, undefined, undefined);
  return into;
}

/** The resources a value refers to through get_resource and get_attr (its dependencies). */
export function references(value: unknown, version: HotVersion): string[] {
  const a = analyse(value, { version, file: '' });
  return [...new Set([...a.resources.map((r) => r.name), ...a.attrs.map((r) => r.name)])];
}

function walk(v: unknown, o: AnalysisOptions, out: Analysis, cond: boolean, parent: unknown, key: string | number | undefined): void {
  if (Array.isArray(v)) { v.forEach((x, i) => walk(x, o, out, cond, v, i)); return; }
  if (cond && (typeof v === 'string')) { out.conditions.push({ name: v, at: positionOf(parent, key) }); return; }
  if (!isObj(v)) return;
  const call = functionCall(v);
  if (call) {
    const verdict = classifyKey(o.version, call.fn, cond);
    const at = positionOf(v);
    if (verdict.kind === 'function') { checkCall(call.fn, call.args, v, o, out); return; }
    if (verdict.kind !== 'data') { out.problems.push(problemAt(at, o.file, verdict.message)); return; }
  } else if (cond) {
    out.problems.push(problemAt(positionOf(v), o.file, `a condition is a condition name, a boolean or one condition function; got a mapping with keys ${Object.keys(v).join(', ')}`));
    return;
  }
  for (const [k, x] of Object.entries(v)) walk(x, o, out, false, v, k);
}

function checkCall(fn: string, args: unknown, node: Obj, o: AnalysisOptions, out: Analysis): void {
  const at = positionOf(node);
  const bad = (m: string): void => void out.problems.push(problemAt(at, o.file, `${fn}: ${m}`));
  const list = Array.isArray(args) ? args : undefined;
  const recurse = (x: unknown, c = false): void => walk(x, o, out, c, node, fn);
  switch (fn) {
    case 'get_param': {
      const name = list ? list[0] : args;
      if (typeof name !== 'string') { bad('expected a parameter name, or a list of the name and a path'); if (!list) recurse(args); return; }
      out.params.push({ name, at });
      list?.slice(1).forEach((x) => recurse(x));
      return;
    }
    case 'get_resource':
      if (typeof args !== 'string') bad('expected a resource name');
      else out.resources.push({ name: args, at });
      return;
    case 'get_attr': {
      if (!list || list.length < 1 || typeof list[0] !== 'string') { bad('expected [resource name, attribute name, path...]'); return; }
      if (list.length < 2 && !allowsGetAttrAll(o.version)) { bad(`an attribute name is required before heat_template_version 2015-10-15`); return; }
      out.attrs.push({ name: list[0], at, attribute: typeof list[1] === 'string' ? list[1] : undefined });
      list.slice(1).forEach((x) => recurse(x));
      return;
    }
    case 'get_file':
      if (typeof args !== 'string') bad('expected a file path (a string, not a function)');
      else out.files.push({ name: args, at });
      return;
    case 'if': {
      const n = list?.length ?? 0;
      if (!list || n < 2 || n > 3 || (n === 2 && !allowsTwoArgumentIf(o.version))) {
        bad(allowsTwoArgumentIf(o.version) ? 'expected [condition, value if true] or [condition, value if true, value if false]' : 'expected [condition, value if true, value if false]');
        return;
      }
      if (typeof list[0] === 'boolean') { /* a literal condition */ } else recurse(list[0], true);
      list.slice(1).forEach((x) => recurse(x));
      return;
    }
    case 'equals': case 'contains':
      if (!list || list.length !== 2) { bad(`expected a list of two values`); return; }
      list.forEach((x) => recurse(x, false));
      return;
    case 'not':
      if (typeof args !== 'boolean') recurse(args, true);
      return;
    case 'and': case 'or':
      if (!list || list.length < 2) { bad('expected a list of at least two conditions'); return; }
      list.forEach((x) => { if (typeof x !== 'boolean') recurse(x, true); });
      return;
    case 'str_replace': case 'str_replace_strict': case 'str_replace_vstrict':
      if (!isObj(args) || !('template' in args) || !('params' in args)) { bad('expected a mapping with "template" and "params"'); return; }
      recurse(args.template); recurse(args.params);
      return;
    case 'list_join':
      if (!list || list.length < 2) { bad('expected [delimiter, list, ...]'); return; }
      list.forEach((x) => recurse(x));
      return;
    case 'str_split':
      if (!list || list.length < 2 || list.length > 3) { bad('expected [delimiter, string] or [delimiter, string, index]'); return; }
      list.forEach((x) => recurse(x));
      return;
    case 'digest':
      if (!list || list.length !== 2) { bad('expected [algorithm, value]'); return; }
      list.forEach((x) => recurse(x));
      return;
    case 'map_replace':
      if (!list || list.length !== 2) { bad('expected [mapping, {keys: ..., values: ...}]'); return; }
      list.forEach((x) => recurse(x));
      return;
    case 'repeat':
      if (!isObj(args) || !('for_each' in args) || !('template' in args)) { bad('expected a mapping with "for_each" and "template"'); return; }
      for (const k of Object.keys(args)) if (k !== 'for_each' && k !== 'template' && !(k === 'permutations' && allowsRepeatPermutations(o.version))) bad(`unexpected key "${k}"`);
      recurse(args.for_each); recurse(args.template);
      return;
    default:
      // map_merge, list_concat, list_concat_unique, filter: any arguments, checked when evaluated.
      recurse(args);
  }
}
