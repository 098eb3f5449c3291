/**
 * heat_template_version: the dates and release names Heat accepts, and the
 * intrinsic functions each allows. Facts from Heat's HOT specification
 * (doc/source/template_guide/hot_spec.rst) and its template classes
 * (heat/engine/hot/template.py): a function belongs to the version that added
 * it and to every later one; release names alias dates from Newton on.
 */
export interface HotVersion {
  /** The date form, whichever spelling the template used. */
  date: string;
  /** Release name when Heat has one for this date. */
  name?: string;
}

const VERSIONS: HotVersion[] = [
  { date: '2013-05-23' },
  { date: '2014-10-16' },
  { date: '2015-04-30' },
  { date: '2015-10-15' },
  { date: '2016-04-08' },
  { date: '2016-10-14', name: 'newton' },
  { date: '2017-02-24', name: 'ocata' },
  { date: '2017-09-01', name: 'pike' },
  { date: '2018-03-02', name: 'queens' },
  { date: '2018-08-31', name: 'rocky' },
  { date: '2021-04-16', name: 'wallaby' },
];

export const VERSION_NAMES = VERSIONS.flatMap((v) => (v.name ? [v.date, v.name] : [v.date]));

export function parseVersion(v: unknown): HotVersion | undefined {
  const s = v instanceof Date ? v.toISOString().slice(0, 10) : typeof v === 'string' ? v : undefined;
  return VERSIONS.find((x) => x.date === s || x.name === s);
}

/** When each HOT function appeared (the first version allowing it). */
const FUNCTION_SINCE: Record<string, string> = {
  get_attr: '2013-05-23', get_file: '2013-05-23', get_param: '2013-05-23', get_resource: '2013-05-23',
  list_join: '2013-05-23', resource_facade: '2013-05-23', str_replace: '2013-05-23',
  repeat: '2015-04-30', digest: '2015-04-30',
  str_split: '2015-10-15',
  map_merge: '2016-04-08',
  yaql: '2016-10-14', map_replace: '2016-10-14', if: '2016-10-14',
  filter: '2017-02-24', str_replace_strict: '2017-02-24',
  make_url: '2017-09-01', list_concat: '2017-09-01', list_concat_unique: '2017-09-01',
  str_replace_vstrict: '2017-09-01', contains: '2017-09-01',
};

/** Condition functions (the `conditions` section, `condition:` of resources and outputs, the first argument of `if`). */
const CONDITION_SINCE: Record<string, string> = {
  get_param: '2016-10-14', equals: '2016-10-14', not: '2016-10-14', and: '2016-10-14', or: '2016-10-14',
  yaql: '2017-09-01', contains: '2017-09-01',
};

/**
 * CloudFormation functions: 2013-05-23 still accepts some; Heat removed them
 * from HOT in 2014-10-16 (Fn::Select in 2015-10-15). osp supports none.
 */
const CFN_FUNCTIONS = new Set(['Fn::Base64', 'Fn::GetAZs', 'Fn::Join', 'Fn::MemberListToMap', 'Fn::Replace', 'Fn::ResourceFacade', 'Fn::Select', 'Fn::Split', 'Ref', 'Fn::GetAtt', 'Fn::FindInMap', 'Fn::If', 'Fn::Equals', 'Fn::Not', 'Fn::And', 'Fn::Or']);

/** Functions Heat has that osp does not evaluate, with why. */
export const UNSUPPORTED_FUNCTIONS: Record<string, string> = {
  yaql: 'YAQL expressions are not evaluated by osp',
  make_url: 'make_url is not supported by osp',
  resource_facade: 'resource_facade is not supported by osp (no provider templates reading their facade)',
};

export const CONDITION_NAME = Symbol('condition-name');

export type FunctionVerdict =
  | { kind: 'function' }
  | { kind: 'unsupported'; message: string }
  | { kind: 'not-in-version'; message: string }
  | { kind: 'unknown'; message: string }
  | { kind: 'data' };

const after = (version: HotVersion, since: string | undefined): boolean => since !== undefined && version.date >= since;

/**
 * Heat treats a one-key mapping as a function call when the key is a function
 * of the template's version; otherwise it is data. osp is stricter, so a typo
 * does not pass through as data: a one-key mapping whose key is a function of
 * another version, a CloudFormation function, or shaped like a HOT function
 * (get_*, str_*, list_*, map_*, Fn::*) is a problem.
 */
export function classifyKey(version: HotVersion, key: string, conditionContext: boolean): FunctionVerdict {
  const table = conditionContext ? CONDITION_SINCE : FUNCTION_SINCE;
  const since = table[key];
  if (since !== undefined && after(version, since)) {
    return key in UNSUPPORTED_FUNCTIONS ? { kind: 'unsupported', message: UNSUPPORTED_FUNCTIONS[key] } : { kind: 'function' };
  }
  if (since !== undefined) {
    return { kind: 'not-in-version', message: `function "${key}" is not allowed in heat_template_version ${version.name ?? version.date} (from ${since} on)` };
  }
  if (conditionContext && key in FUNCTION_SINCE) {
    return { kind: 'not-in-version', message: `function "${key}" is not a condition function (conditions take ${Object.keys(CONDITION_SINCE).filter((k) => after(version, CONDITION_SINCE[k])).join(', ')})` };
  }
  if (!conditionContext && key in CONDITION_SINCE) {
    // equals, not, and, or: condition-only functions, data elsewhere in Heat; osp refuses the likely mistake.
    return { kind: 'not-in-version', message: `function "${key}" is a condition function: use it in the conditions section or as the condition of "if"` };
  }
  if (CFN_FUNCTIONS.has(key)) {
    return { kind: 'unsupported', message: `CloudFormation function "${key}" is not supported in HOT templates by osp` };
  }
  if (/^(get|str|list|map)_[a-z_]+$/.test(key) || /^Fn::/.test(key)) return { kind: 'unknown', message: `unknown intrinsic function "${key}"` };
  return { kind: 'data' };
}

/** Wallaby added the two-argument `if`: the enclosing item is left out when the condition is false. */
export const allowsTwoArgumentIf = (v: HotVersion): boolean => v.date >= '2021-04-16';
/** `repeat` takes `permutations` from Pike on. */
export const allowsRepeatPermutations = (v: HotVersion): boolean => v.date >= '2017-09-01';
/** `get_attr` with no attribute name (every attribute) from 2015-10-15 on. */
export const allowsGetAttrAll = (v: HotVersion): boolean => v.date >= '2015-10-15';
/** The `conditions` section and `condition:` on resources and outputs: Newton on. */
export const allowsConditions = (v: HotVersion): boolean => v.date >= '2016-10-14';
