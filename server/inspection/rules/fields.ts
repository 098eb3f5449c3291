/**
 * Where a condition's `field` points. ironic-inspector takes `data://` +
 * a JSONPath into the introspection data, `node://` + a dotted path into
 * the node, and (for old rules) a bare path meaning `data://`. The subset
 * of JSONPath here is what rules use in practice: dotted keys, `[N]`,
 * `[*]` / `.*` wildcards, and an optional leading `$`.
 */

export type FieldScope = 'data' | 'node';

export interface FieldRef {
  scope: FieldScope;
  /** Path steps; '*' fans out over every element or value. */
  steps: (string | number)[];
}

const STEP = /^(?:\.?([A-Za-z0-9_\-:]+|\*)|\[(\d+|\*)\]|\['([^']*)'\]|\["([^"]*)"\])/;

/** Parses a field reference; returns an error text (naming what was expected) instead of throwing. */
export function parseField(field: string): FieldRef | string {
  let scope: FieldScope = 'data';
  let rest = field.trim();
  const m = /^([a-z]+):\/\//.exec(rest);
  if (m) {
    if (m[1] !== 'data' && m[1] !== 'node') return `a field starting data:// or node:// (or a plain path into the introspection data), not ${m[1]}://`;
    scope = m[1];
    rest = rest.slice(m[0].length);
  }
  if (rest.startsWith('$')) rest = rest.slice(1);
  if (!rest) return 'a path after the scheme, e.g. data://inventory.cpu.count';
  const steps: (string | number)[] = [];
  while (rest.length) {
    const s = STEP.exec(rest);
    if (!s || s[0] === '.') return `a path of dotted keys, [N] or [*] (could not read ${JSON.stringify(rest)})`;
    const key = s[1] ?? s[3] ?? s[4];
    if (s[2] !== undefined) steps.push(s[2] === '*' ? '*' : Number(s[2]));
    else steps.push(key);
    rest = rest.slice(s[0].length);
  }
  return { scope, steps };
}

/** Every value the path reaches, in document order; empty when it reaches nothing. */
export function resolvePath(root: unknown, steps: (string | number)[]): unknown[] {
  let cur: unknown[] = [root];
  for (const step of steps) {
    const next: unknown[] = [];
    for (const v of cur) {
      if (v === null || typeof v !== 'object') continue;
      if (step === '*') next.push(...(Array.isArray(v) ? v : Object.values(v)));
      else if (Array.isArray(v)) {
        const i = typeof step === 'number' ? step : /^\d+$/.test(step) ? Number(step) : NaN;
        if (i < v.length) next.push(v[i]);
      } else if (Object.prototype.hasOwnProperty.call(v, String(step))) next.push((v as Record<string, unknown>)[String(step)]);
    }
    cur = next;
  }
  return cur;
}

// Python str.format field syntax as inspector uses it: {data[inventory][bmc_address]}.
const TEMPLATE_FIELD = /\{\{|\}\}|\{([a-z_]+)((?:\[[^\]]*\])*)\}/g;

/** Problems with a value template, or null; `{{` and `}}` are literal braces. */
export function checkTemplate(value: string, roots: string[]): string | null {
  let unknownRoot: string | null = null;
  const stripped = value.replace(TEMPLATE_FIELD, (all, root: string | undefined) => {
    if (all !== '{{' && all !== '}}' && !(root && roots.includes(root))) unknownRoot ??= root ?? '';
    return '';
  });
  if (unknownRoot !== null) return `a template field {${roots.join('[…]} or {')}[…]} (not {${unknownRoot}…})`;
  if (/[{}]/.test(stripped)) return 'balanced {…} template fields (use {{ and }} for literal braces)';
  return null;
}

/** Renders a template; a missing key is an error naming the template. */
export function renderTemplate(value: string, roots: Record<string, unknown>): string {
  return value.replace(TEMPLATE_FIELD, (all, root: string | undefined, keys: string | undefined) => {
    if (all === '{{') return '{';
    if (all === '}}') return '}';
    const steps = [...(keys ?? '').matchAll(/\[([^\]]*)\]/g)].map((k) => k[1]);
    const found = resolvePath(roots[root ?? ''], steps);
    if (!found.length || found[0] === undefined) throw new Error(`template ${all}: nothing at that path`);
    const v = found[0];
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}
