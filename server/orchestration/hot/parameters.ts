import { isObj, positionOf, valuePositionOf, type Obj } from './source.js';
import { problemAt, type HotProblem, type Position } from './problems.js';
import type { HotVersion } from './versions.js';

/**
 * Template parameters: their schema, how a value given as text
 * (`--parameter K=V`) or as YAML becomes a typed value, and the constraints.
 * Messages are Heat's (heat/engine/parameters.py, constraints.py, and
 * oslo.utils' bool_from_string for booleans), so an operator's searches for a
 * Heat error find the same sentence.
 */
export type ParameterType = 'string' | 'number' | 'boolean' | 'json' | 'comma_delimited_list';
export const PARAMETER_TYPES: ParameterType[] = ['string', 'number', 'boolean', 'json', 'comma_delimited_list'];

export type Constraint =
  | { kind: 'length' | 'range'; min?: number; max?: number; description?: string }
  | { kind: 'modulo'; step: number; offset: number; description?: string }
  | { kind: 'allowed_values'; values: unknown[]; description?: string }
  | { kind: 'allowed_pattern'; pattern: string; regex: RegExp; description?: string };

export interface ParameterSchema {
  name: string;
  type: ParameterType;
  at?: Position;
  label?: string;
  description?: string;
  default?: unknown;
  hidden: boolean;
  immutable: boolean;
  tags: string[];
  constraints: Constraint[];
}

const SCHEMA_KEYS = new Set(['type', 'label', 'description', 'default', 'hidden', 'constraints', 'immutable', 'tags']);
const CONSTRAINT_TYPES: Record<Constraint['kind'], ParameterType[]> = {
  length: ['string', 'comma_delimited_list', 'json'],
  range: ['number'],
  modulo: ['number'],
  allowed_values: ['string', 'number', 'boolean', 'comma_delimited_list'],
  allowed_pattern: ['string'],
};
// Heat names constraints by class in this message ("Range constraint invalid for String").
const CLASS_NAME: Record<Constraint['kind'], string> = { length: 'Length', range: 'Range', modulo: 'Modulo', allowed_values: 'AllowedValues', allowed_pattern: 'AllowedPattern' };
const TYPE_NAME: Record<ParameterType, string> = { string: 'String', number: 'Number', boolean: 'Boolean', json: 'Map', comma_delimited_list: 'List' };

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Reads the `parameters` section; problems for each malformed schema. */
export function parseParameterSchemas(file: string, section: unknown, version: HotVersion, problems: HotProblem[]): Map<string, ParameterSchema> {
  const out = new Map<string, ParameterSchema>();
  if (section === undefined || section === null) return out;
  if (!isObj(section)) {
    problems.push(problemAt(positionOf(section), file, 'parameters: expected a mapping of parameter names to their schema'));
    return out;
  }
  for (const [name, raw] of Object.entries(section)) {
    const at = positionOf(section, name);
    const bad = (m: string): void => void problems.push(problemAt(at, file, `Parameter '${name}' is invalid: ${m}`));
    if (!isObj(raw)) { bad('expected a mapping with at least "type"'); continue; }
    for (const k of Object.keys(raw)) if (!SCHEMA_KEYS.has(k)) problems.push(problemAt(positionOf(raw, k), file, `Invalid key '${k}' for parameter (${name})`));
    if (raw.type === undefined) { problems.push(problemAt(at, file, `Missing parameter type for parameter: ${name}`)); continue; }
    const type = PARAMETER_TYPES.find((t) => t === raw.type);
    if (!type) { problems.push(problemAt(valuePositionOf(raw, 'type'), file, `Invalid type (${String(raw.type)}) for parameter ${name}: expected one of ${PARAMETER_TYPES.join(', ')}`)); continue; }
    const schema: ParameterSchema = {
      name, type, at,
      label: typeof raw.label === 'string' ? raw.label : undefined,
      description: typeof raw.description === 'string' ? raw.description : undefined,
      default: raw.default ?? undefined,
      hidden: raw.hidden === true || String(raw.hidden).toLowerCase() === 'true',
      immutable: raw.immutable === true,
      tags: Array.isArray(raw.tags) ? raw.tags.map(String) : [],
      constraints: parseConstraints(file, name, type, raw.constraints, version, problems),
    };
    if (raw.tags !== undefined && !Array.isArray(raw.tags)) problems.push(problemAt(positionOf(raw, 'tags'), file, `Tags property should be a list for parameter: ${name}`));
    if (schema.default !== undefined) {
      const r = convertParameter(schema, schema.default);
      const msg = 'error' in r ? r.error : checkConstraints(schema, r.value);
      if (msg) bad(`Invalid default ${showPy(schema.default)} (${msg})`);
    }
    out.set(name, schema);
  }
  return out;
}

function parseConstraints(file: string, name: string, type: ParameterType, raw: unknown, version: HotVersion, problems: HotProblem[]): Constraint[] {
  if (raw === undefined || raw === null) return [];
  const bad = (where: unknown, m: string): void => void problems.push(problemAt(positionOf(where), file, `Parameter '${name}' is invalid: ${m}`));
  if (!Array.isArray(raw)) { bad(raw, 'constraints: expected a list'); return []; }
  const out: Constraint[] = [];
  for (const c of raw) {
    if (!isObj(c)) { bad(raw, 'constraints: each constraint is a mapping such as {range: {min: 1}}'); continue; }
    const description = typeof c.description === 'string' ? c.description : undefined;
    const kinds = Object.keys(c).filter((k) => k !== 'description');
    if (kinds.length !== 1) { bad(c, `a constraint has exactly one type besides "description"; got ${kinds.join(', ') || 'none'}`); continue; }
    const kind = kinds[0];
    const arg = c[kind];
    let made: Constraint | undefined;
    if (kind === 'length' || kind === 'range') {
      const a = isObj(arg) ? arg : {};
      const min = a.min ?? undefined, max = a.max ?? undefined;
      if (min === undefined && max === undefined) bad(c, `A ${kind} constraint must have a min value and/or a max value specified.`);
      else if ((min !== undefined && !isNum(min)) || (max !== undefined && !isNum(max))) bad(c, kind === 'length' ? 'min/max length must be integral' : 'min/max must be numeric');
      else made = { kind, min: min as number | undefined, max: max as number | undefined, description };
    } else if (kind === 'modulo') {
      const a = isObj(arg) ? arg : {};
      if (version.date < '2017-02-24') bad(c, `modulo constraints need heat_template_version 2017-02-24 or later`);
      else if (!isNum(a.step) || !isNum(a.offset) || !Number.isInteger(a.step) || !Number.isInteger(a.offset)) bad(c, 'A modulo constraint must have a step value and an offset value specified.');
      else if (a.step === 0) bad(c, 'step cannot be 0.');
      else if (Math.abs(a.offset) >= Math.abs(a.step)) bad(c, 'offset must be smaller (by absolute value) than step.');
      else if (a.step * a.offset < 0) bad(c, 'step and offset must be both positive or both negative.');
      else made = { kind, step: a.step, offset: a.offset, description };
    } else if (kind === 'allowed_values') {
      if (!Array.isArray(arg)) bad(c, 'AllowedValues must be a list');
      else made = { kind, values: arg, description };
    } else if (kind === 'allowed_pattern') {
      if (typeof arg !== 'string') bad(c, 'AllowedPattern must be a string');
      else {
        try { made = { kind, pattern: arg, regex: new RegExp(`^(?:${arg})`, 'u'), description }; } catch (e) { bad(c, `allowed_pattern ${JSON.stringify(arg)}: not a regular expression osp can use (${(e as Error).message})`); }
      }
    } else if (kind === 'custom_constraint') {
      bad(c, `custom_constraint ${JSON.stringify(arg)} is not supported by osp (it checks values against OpenStack services)`);
    } else {
      bad(c, `unknown constraint "${kind}" (expected length, range, modulo, allowed_values, allowed_pattern)`);
    }
    if (made && !CONSTRAINT_TYPES[made.kind].includes(type)) { bad(c, `${CLASS_NAME[made.kind]} constraint invalid for ${TYPE_NAME[type]}`); made = undefined; }
    if (made) out.push(made);
  }
  return out;
}

const TRUE_STRINGS = ['1', 't', 'true', 'on', 'y', 'yes'];
const FALSE_STRINGS = ['0', 'f', 'false', 'off', 'n', 'no'];
const ACCEPTABLE = [...TRUE_STRINGS, ...FALSE_STRINGS].sort().map((s) => `'${s}'`).join(', ');
// Python's int()/float() literals, which Heat's str_to_num accepts.
const PY_NUMBER = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** Python's str() of a value, as Heat's messages print it. */
export function showPy(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (Array.isArray(v)) return `[${v.map(reprPy).join(', ')}]`;
  if (isObj(v)) return `{${Object.entries(v).map(([k, x]) => `${reprPy(k)}: ${reprPy(x)}`).join(', ')}}`;
  return String(v);
}
const reprPy = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : showPy(v));

/** A value given for a parameter, in the parameter's type; or Heat's reason it is not one. */
export function convertParameter(schema: ParameterSchema, raw: unknown): { value: unknown } | { error: string } {
  switch (schema.type) {
    case 'string':
      if (typeof raw === 'string') return { value: raw };
      if (typeof raw === 'number' || typeof raw === 'boolean') return { value: String(raw) };
      return { error: `Value "${showPy(raw)}" is invalid for data type "String".` };
    case 'number':
      if (isNum(raw)) return { value: raw };
      if (typeof raw === 'string' && PY_NUMBER.test(raw)) return { value: Number(raw) };
      return { error: `could not convert string to float: '${showPy(raw)}'` };
    case 'boolean': {
      if (typeof raw === 'boolean') return { value: raw };
      const s = String(raw).trim().toLowerCase();
      if (TRUE_STRINGS.includes(s)) return { value: true };
      if (FALSE_STRINGS.includes(s)) return { value: false };
      return { error: `Unrecognized value '${showPy(raw)}', acceptable values are: ${ACCEPTABLE}` };
    }
    case 'json':
      if (typeof raw !== 'string') return { value: raw };
      if (raw === '') return { value: raw };
      try { return { value: JSON.parse(raw) as unknown }; } catch (e) { return { error: `Value must be valid JSON: ${(e as Error).message}` }; }
    case 'comma_delimited_list':
      if (Array.isArray(raw)) return { value: raw.map((x) => (typeof x === 'string' ? x : typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x))) };
      if (typeof raw === 'string') return { value: raw === '' ? [] : raw.split(',').map((s) => s.trim()) };
      if (typeof raw === 'number' || typeof raw === 'boolean') return { value: [String(raw)] };
      return { error: `Value must be a comma-delimited list string: ${showPy(raw)}` };
  }
}

const lengthOf = (v: unknown): number => (typeof v === 'string' ? [...v].length : Array.isArray(v) ? v.length : isObj(v) ? Object.keys(v as Obj).length : 0);

function allowed(schema: ParameterSchema, c: Extract<Constraint, { kind: 'allowed_values' }>, v: unknown): boolean {
  const norm = (x: unknown): unknown => {
    const r = convertParameter({ ...schema, type: schema.type === 'comma_delimited_list' ? 'string' : schema.type }, x);
    return 'value' in r ? r.value : x;
  };
  const set = c.values.map(norm);
  if (Array.isArray(v)) return v.every((x) => set.includes(norm(x)));
  return set.includes(norm(v));
}

/** The first constraint a typed value breaks, as Heat words it (the constraint's description when it has one). */
export function checkConstraints(schema: ParameterSchema, v: unknown): string | undefined {
  for (const c of schema.constraints) {
    let msg: string | undefined;
    if (c.kind === 'range' && typeof v === 'number' && ((c.min !== undefined && v < c.min) || (c.max !== undefined && v > c.max))) {
      msg = `${showPy(v)} is out of range (min: ${showPy(c.min)}, max: ${showPy(c.max)})`;
    } else if (c.kind === 'length') {
      const n = lengthOf(v);
      if ((c.min !== undefined && n < c.min) || (c.max !== undefined && n > c.max)) msg = `length (${n}) is out of range (min: ${showPy(c.min)}, max: ${showPy(c.max)})`;
    } else if (c.kind === 'modulo' && typeof v === 'number') {
      const r = ((v % c.step) + c.step) % c.step;
      if (r !== ((c.offset % c.step) + c.step) % c.step) msg = `${v} is not a multiple of ${c.step} with an offset of ${c.offset})`;
    } else if (c.kind === 'allowed_values' && !allowed(schema, c, v)) {
      msg = `"${showPy(v)}" is not an allowed value [${c.values.map(showPy).join(', ')}]`;
    } else if (c.kind === 'allowed_pattern' && typeof v === 'string') {
      const m = c.regex.exec(v);
      if (!m || m[0].length !== v.length) msg = `"${v}" does not match pattern "${c.pattern}"`;
    }
    if (msg) return c.description ?? msg;
  }
  return undefined;
}

/** A value for the parameter, typed and checked; the error is Heat's whole sentence. */
export function validateParameterValue(schema: ParameterSchema, raw: unknown): { value: unknown } | { error: string } {
  const r = convertParameter(schema, raw);
  if ('error' in r) return { error: `Parameter '${schema.name}' is invalid: ${r.error}` };
  const msg = checkConstraints(schema, r.value);
  return msg ? { error: `Parameter '${schema.name}' is invalid: ${msg}` } : r;
}

export const MASK = '******';

/** The names of hidden parameters: their values are secrets, shown masked everywhere. */
export function hiddenParameterNames(schemas: Map<string, ParameterSchema>): string[] {
  return [...schemas.values()].filter((s) => s.hidden).map((s) => s.name);
}

/** A copy of resolved parameter values with every hidden one replaced by the mask. */
export function maskParameters(values: Record<string, unknown>, hidden: Iterable<string>): Record<string, unknown> {
  const out = { ...values };
  for (const n of hidden) if (n in out) out[n] = MASK;
  return out;
}
