import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { functionCall } from './analysis.js';
import { positionOf, isObj, type Obj } from './source.js';
import { problemAt, templateInvalid } from './problems.js';
import { allowsTwoArgumentIf, classifyKey, type HotVersion } from './versions.js';

/**
 * Evaluation of intrinsic functions. The caller supplies the live data
 * (parameter values, resource references and attributes, conditions, files)
 * through the context, so the same resolver serves validation (placeholders)
 * and the engine (stored resource data).
 */
export interface ResolveContext {
  version: HotVersion;
  /** The bundle file the value comes from (for problem positions). */
  file: string;
  /** A parameter's typed value; throws when the template has no such parameter. */
  param(name: string): unknown;
  /** What get_resource returns: the resource's reference id. */
  resourceRef(name: string): unknown;
  /** What get_attr returns; `attribute` undefined asks for every attribute; `path` is already resolved. */
  attr(resource: string, attribute: string | undefined, path: (string | number)[]): unknown;
  /** A named condition's value. */
  condition(name: string): boolean;
  /** get_file: the contents of `ref`, relative to the template's own file. */
  file_(ref: string): string;
}

/** What a false two-argument `if` (Wallaby) leaves: the enclosing item is dropped. */
export const ELIDED: unique symbol = Symbol('elided');

const DIGESTS = new Set(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']);

function fail(ctx: ResolveContext, node: unknown, fn: string, message: string): never {
  throw templateInvalid([problemAt(positionOf(node), ctx.file, `${fn}: ${message}`)]);
}

/** Walks `path` (keys and list indexes) into a value, as get_param and get_attr do. */
export function followPath(value: unknown, path: readonly unknown[], onError: (m: string) => never): unknown {
  let cur = value;
  for (const k of path) {
    if (typeof k !== 'string' && typeof k !== 'number') onError(`path components must be strings or integers; got ${JSON.stringify(k)}`);
    if (Array.isArray(cur)) {
      const i = typeof k === 'number' ? k : /^-?\d+$/.test(k) ? Number(k) : NaN;
      if (!Number.isInteger(i)) onError(`path component "${k}" must be an integer to index a list`);
      if (i < 0 || i >= cur.length) onError(`index ${i} is out of range (the list has ${cur.length} items)`);
      cur = cur[i];
    } else if (isObj(cur)) {
      if (!Object.hasOwn(cur, String(k))) onError(`key "${k}" not found (keys: ${Object.keys(cur).join(', ') || 'none'})`);
      cur = cur[String(k)];
    } else {
      onError(`can't traverse path: "${k}" into ${cur === null ? 'null' : typeof cur}`);
    }
  }
  return cur;
}

/** Resolves every intrinsic function in a value. A false two-argument `if` at the top yields undefined. */
export function resolve(value: unknown, ctx: ResolveContext): unknown {
  const r = res(value, ctx);
  return r === ELIDED ? undefined : r;
}

function res(v: unknown, ctx: ResolveContext): unknown {
  if (Array.isArray(v)) return v.map((x) => res(x, ctx)).filter((x) => x !== ELIDED);
  if (!isObj(v)) return v;
  const call = functionCall(v);
  if (call) {
    const verdict = classifyKey(ctx.version, call.fn, false);
    if (verdict.kind === 'function') return callFunction(call.fn, call.args, v, ctx);
    if (verdict.kind !== 'data') fail(ctx, v, call.fn, verdict.message);
  }
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    const r = res(x, ctx);
    if (r !== ELIDED) Object.defineProperty(out, k, { value: r, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A condition's value: a condition name, a boolean, or a condition function. */
export function evaluateCondition(v: unknown, ctx: ResolveContext): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return ctx.condition(v);
  const call = functionCall(v);
  if (!call) fail(ctx, v, 'condition', `expected a condition name, a boolean or a condition function; got ${JSON.stringify(v)}`);
  const verdict = classifyKey(ctx.version, call.fn, true);
  if (verdict.kind !== 'function') fail(ctx, v, call.fn, verdict.kind === 'data' ? `not a condition function` : verdict.message);
  const list = Array.isArray(call.args) ? call.args : undefined;
  switch (call.fn) {
    case 'get_param': {
      const r = callFunction('get_param', call.args, v as Obj, ctx);
      if (typeof r !== 'boolean') fail(ctx, v, 'get_param', `a condition needs a boolean; got ${JSON.stringify(r)}`);
      return r;
    }
    case 'equals':
      if (!list || list.length !== 2) fail(ctx, v, 'equals', 'expected a list of two values');
      return isDeepStrictEqual(condValue(list[0], ctx), condValue(list[1], ctx));
    case 'contains': {
      if (!list || list.length !== 2) fail(ctx, v, 'contains', 'expected [value, sequence]');
      const seq = condValue(list[1], ctx);
      if (!Array.isArray(seq) && typeof seq !== 'string') fail(ctx, v, 'contains', `the second argument must be a list or a string; got ${JSON.stringify(seq)}`);
      const needle = condValue(list[0], ctx);
      return typeof seq === 'string' ? typeof needle === 'string' && seq.includes(needle) : seq.some((x) => isDeepStrictEqual(x, needle));
    }
    case 'not':
      return !evaluateCondition(call.args, ctx);
    case 'and': case 'or':
      if (!list || list.length < 2) fail(ctx, v, call.fn, 'expected a list of at least two conditions');
      return call.fn === 'and' ? list.every((c) => evaluateCondition(c, ctx)) : list.some((c) => evaluateCondition(c, ctx));
    default:
      return fail(ctx, v, call.fn, 'not a condition function osp evaluates');
  }
}

/** Arguments of equals/contains: values, where get_param (and nested condition functions) are evaluated. */
function condValue(v: unknown, ctx: ResolveContext): unknown {
  const call = functionCall(v);
  if (!call) return Array.isArray(v) ? v.map((x) => condValue(x, ctx)) : v;
  if (call.fn === 'get_param') return callFunction('get_param', call.args, v as Obj, ctx);
  if (classifyKey(ctx.version, call.fn, true).kind === 'function') return evaluateCondition(v, ctx);
  return v;
}

const toText = (x: unknown): string => (x === null || x === undefined ? '' : typeof x === 'string' ? x : typeof x === 'object' ? JSON.stringify(x) : String(x));

function callFunction(fn: string, rawArgs: unknown, node: Obj, ctx: ResolveContext): unknown {
  const bad = (m: string): never => fail(ctx, node, fn, m);
  switch (fn) {
    case 'get_param': {
      const args = res(rawArgs, ctx);
      const [name, ...path] = Array.isArray(args) ? args : [args];
      if (typeof name !== 'string') bad('expected a parameter name');
      return followPath(ctx.param(name as string), path, bad);
    }
    case 'get_resource':
      if (typeof rawArgs !== 'string') bad('expected a resource name');
      return ctx.resourceRef(rawArgs as string);
    case 'get_attr': {
      const args = res(rawArgs, ctx);
      if (!Array.isArray(args) || typeof args[0] !== 'string') bad('expected [resource name, attribute name, path...]');
      const [resource, attribute, ...path] = args as unknown[];
      if (attribute !== undefined && typeof attribute !== 'string') bad(`attribute name must be a string; got ${JSON.stringify(attribute)}`);
      for (const p of path) if (typeof p !== 'string' && typeof p !== 'number') bad(`path components must be strings or integers; got ${JSON.stringify(p)}`);
      return ctx.attr(resource as string, attribute as string | undefined, path as (string | number)[]);
    }
    case 'get_file':
      if (typeof rawArgs !== 'string') bad('expected a file path');
      return ctx.file_(rawArgs as string);
    case 'if': {
      const list = Array.isArray(rawArgs) ? rawArgs : [];
      if (list.length === 2 && allowsTwoArgumentIf(ctx.version)) return evaluateCondition(list[0], ctx) ? res(list[1], ctx) : ELIDED;
      if (list.length !== 3) bad('expected [condition, value if true, value if false]');
      return evaluateCondition(list[0], ctx) ? res(list[1], ctx) : res(list[2], ctx);
    }
    case 'equals': case 'not': case 'and': case 'or': case 'contains':
      return evaluateCondition(node, ctx);
  }
  const args = res(rawArgs, ctx);
  switch (fn) {
    case 'str_replace': case 'str_replace_strict': case 'str_replace_vstrict':
      return strReplace(fn, args, ctx, bad);
    case 'list_join': {
      if (!Array.isArray(args) || args.length < 2 || typeof args[0] !== 'string') bad('expected [delimiter, list, ...]');
      const [delim, ...lists] = args as unknown[];
      const items: string[] = [];
      for (const l of lists) {
        if (!Array.isArray(l)) bad(`the lists to join must be lists; got ${JSON.stringify(l)}`);
        for (const x of l as unknown[]) items.push(toText(x));
      }
      return items.join(delim as string);
    }
    case 'str_split': {
      if (!Array.isArray(args) || args.length < 2 || typeof args[0] !== 'string' || typeof args[1] !== 'string') bad('expected [delimiter, string] or [delimiter, string, index]');
      const [delim, s, index] = args as [string, string, unknown];
      const parts = (s as string).split(delim as string);
      if (index === undefined) return parts;
      const i = typeof index === 'number' ? index : Number(index);
      if (!Number.isInteger(i) || i < 0 || i >= parts.length) bad(`index ${JSON.stringify(index)} is out of range (${parts.length} parts)`);
      return parts[i];
    }
    case 'map_merge': {
      if (!Array.isArray(args)) bad('expected a list of mappings');
      const out: Obj = {};
      for (const m of args as unknown[]) {
        if (!isObj(m)) bad(`each item must be a mapping; got ${JSON.stringify(m)}`);
        Object.assign(out, m);
      }
      return out;
    }
    case 'map_replace':
      return mapReplace(args, bad);
    case 'list_concat': case 'list_concat_unique': {
      if (!Array.isArray(args)) bad('expected a list of lists');
      const out: unknown[] = [];
      for (const l of args as unknown[]) {
        if (!Array.isArray(l)) bad(`each item must be a list; got ${JSON.stringify(l)}`);
        for (const x of l as unknown[]) if (fn === 'list_concat' || !out.some((y) => isDeepStrictEqual(x, y))) out.push(x);
      }
      return out;
    }
    case 'filter': {
      if (!Array.isArray(args) || args.length !== 2 || !Array.isArray(args[0]) || !Array.isArray(args[1])) bad('expected [values to remove, list]');
      const [drop, list] = args as [unknown[], unknown[]];
      return list.filter((x) => !drop.some((d) => isDeepStrictEqual(d, x)));
    }
    case 'digest': {
      if (!Array.isArray(args) || args.length !== 2 || typeof args[0] !== 'string' || typeof args[1] !== 'string') bad('expected [algorithm, string value]');
      const [alg, val] = args as [string, string];
      if (!DIGESTS.has(alg)) bad(`algorithm "${alg}" is not one of ${[...DIGESTS].join(', ')}`);
      return createHash(alg).update(val, 'utf8').digest('hex');
    }
    case 'repeat':
      return repeat(args, bad);
  }
  return bad('not evaluated by osp');
}

function strReplace(fn: string, args: unknown, _ctx: ResolveContext, bad: (m: string) => never): string {
  if (!isObj(args)) return bad('expected a mapping with "template" and "params"');
  const { template, params } = args;
  if (typeof template !== 'string') bad(`"template" must be a string; got ${JSON.stringify(template)}`);
  if (!isObj(params)) bad(`"params" must be a mapping; got ${JSON.stringify(params)}`);
  const p = params as Obj;
  const keys = Object.keys(p).sort((a, b) => b.length - a.length);
  if (fn !== 'str_replace') {
    const missing = keys.filter((k) => !(template as string).includes(k));
    if (missing.length) bad(`The following params were not found in the template: '${missing.join("', '")}'`);
  }
  if (fn === 'str_replace_vstrict') {
    const empty = keys.filter((k) => p[k] === '' || p[k] === null || p[k] === undefined);
    if (empty.length) bad(`The following params have empty values: '${empty.join("', '")}'`);
  }
  // Longest keys first, and replaced text is never scanned again: one key cannot rewrite another's value.
  const sub = (s: string, i: number): string => (i >= keys.length ? s : s.split(keys[i]).map((part) => sub(part, i + 1)).join(toText(p[keys[i]])));
  return sub(template as string, 0);
}

function mapReplace(args: unknown, bad: (m: string) => never): Obj {
  if (!Array.isArray(args) || args.length !== 2 || !isObj(args[0]) || !isObj(args[1])) return bad('expected [mapping, {keys: ..., values: ...}]');
  const [input, spec] = args as [Obj, Obj];
  for (const k of Object.keys(spec)) if (k !== 'keys' && k !== 'values') bad(`unexpected key "${k}" (expected keys, values)`);
  const keyMap = spec.keys ?? {}, valMap = spec.values ?? {};
  if (!isObj(keyMap) || !isObj(valMap)) bad('"keys" and "values" must be mappings');
  const out: Obj = {};
  for (const [k, v] of Object.entries(input)) {
    const nk = Object.hasOwn(keyMap as Obj, k) ? String((keyMap as Obj)[k]) : k;
    if (Object.hasOwn(out, nk)) bad(`key replacement ${nk} generates a duplicate key`);
    const nv = typeof v === 'string' || typeof v === 'number' ? (Object.hasOwn(valMap as Obj, String(v)) ? (valMap as Obj)[String(v)] : v) : v;
    Object.defineProperty(out, nk, { value: nv, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function substitute(t: unknown, vars: [string, unknown][]): unknown {
  if (typeof t === 'string') return vars.reduce((s, [k, v]) => s.split(k).join(toText(v)), t);
  if (Array.isArray(t)) return t.map((x) => substitute(x, vars));
  if (isObj(t)) {
    const out: Obj = {};
    for (const [k, v] of Object.entries(t)) Object.defineProperty(out, substitute(k, vars) as string, { value: substitute(v, vars), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return t;
}

function repeat(args: unknown, bad: (m: string) => never): unknown[] {
  if (!isObj(args) || !isObj(args.for_each)) return bad('expected {for_each: {<var>: list}, template: ...}');
  const loops = Object.entries(args.for_each);
  for (const [k, l] of loops) if (!Array.isArray(l)) bad(`for_each: the value of "${k}" must be a list; got ${JSON.stringify(l)}`);
  const permutations = args.permutations === undefined ? true : args.permutations;
  if (typeof permutations !== 'boolean') bad('"permutations" must be a boolean');
  // As in Heat, the template is evaluated first and the loop values are substituted into the result.
  const template = args.template;
  let combos: [string, unknown][][];
  if (permutations) {
    combos = loops.reduce<[string, unknown][][]>((acc, [k, l]) => acc.flatMap((c) => (l as unknown[]).map((x) => [...c, [k, x] as [string, unknown]])), [[]]);
  } else {
    const n = (loops[0]?.[1] as unknown[] | undefined)?.length ?? 0;
    if (loops.some(([, l]) => (l as unknown[]).length !== n)) bad('with "permutations: false" every for_each list must have the same length');
    combos = Array.from({ length: n }, (_, i) => loops.map(([k, l]) => [k, (l as unknown[])[i]] as [string, unknown]));
  }
  return combos.map((c) => substitute(template, c));
}
