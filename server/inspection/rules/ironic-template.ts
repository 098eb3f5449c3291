/**
 * Value templates in Ironic's inspection rules: Python str.format fields over
 * `node` (an object: `{node.driver_info[ipmi_address]}`), `inventory` and
 * `plugin_data` (mappings: `{inventory[cpu][count]}`) and, inside a loop,
 * `item`. A value that is exactly one field keeps the type of what it reads
 * (a number stays a number), so `{inventory[cpu][count]}` compares as 16.
 */

export type TemplateRoot = 'node' | 'inventory' | 'plugin_data' | 'item';

/** Attributes `{node.X}` can read: Ironic's node fields osp has, plus osp's own (capabilities, root_device, ports). */
export const NODE_ATTRIBUTES = [
  'uuid', 'name', 'driver', 'driver_info', 'properties', 'capabilities', 'root_device', 'ports', 'traits',
  'provision_state', 'power_state', 'maintenance', 'auto_discovered',
];

interface Field {
  root: string;
  /** `.attr` steps are `{ attr }`, `[key]` steps are `{ key }`. */
  steps: ({ attr: string } | { key: string })[];
  text: string;
}

type Segment = string | Field;

/** Parses a format string; an error text (naming what was expected) instead of throwing. */
function parse(value: string): Segment[] | string {
  const out: Segment[] = [];
  let text = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '}') {
      if (value[i + 1] !== '}') return 'balanced {…} fields (write }} for a literal brace)';
      text += '}';
      i++;
      continue;
    }
    if (ch !== '{') {
      text += ch;
      continue;
    }
    if (value[i + 1] === '{') {
      text += '{';
      i++;
      continue;
    }
    const end = value.indexOf('}', i);
    if (end < 0) return 'balanced {…} fields (write {{ for a literal brace)';
    const body = value.slice(i + 1, end);
    const m = /^([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[[^\]{}]*\])*)$/.exec(body);
    if (!m) {
      if (/[!:]/.test(body)) return `a plain field such as {inventory[bmc_address]} (osp renders no conversions or format specs: {${body}})`;
      return `a field such as {inventory[bmc_address]} or {node.name} (could not read {${body}})`;
    }
    const steps = [...m[2].matchAll(/\.([A-Za-z_]\w*)|\[([^\]]*)\]/g)].map((s) => (s[1] !== undefined ? { attr: s[1] } : { key: s[2] }));
    if (text) out.push(text);
    text = '';
    out.push({ root: m[1], steps, text: `{${body}}` });
    i = end;
  }
  if (text) out.push(text);
  return out;
}

function bracketForm(f: Field): string {
  return `{${f.root}${f.steps.map((s) => `[${'attr' in s ? s.attr : s.key}]`).join('')}}`;
}

/** Problems with a template given the roots in reach, or null. */
export function checkTemplate(value: string, roots: TemplateRoot[]): string | null {
  const segs = parse(value);
  if (typeof segs === 'string') return segs;
  for (const s of segs) {
    if (typeof s === 'string') continue;
    if (!(roots as string[]).includes(s.root)) {
      const hint = s.root === 'data' ? " (inspector's {data[…]} is {inventory[…]} or {plugin_data[…]} in Ironic's format)" : '';
      return `a field of ${roots.map((r) => `{${r}…}`).join(', ')}, not ${s.text}${hint}`;
    }
    const [first, ...rest] = s.steps;
    if (s.root === 'node') {
      if (!first || !('attr' in first) || !NODE_ATTRIBUTES.includes(first.attr)) {
        return `{node.<attribute>} with one of ${NODE_ATTRIBUTES.join(', ')} (not ${s.text})`;
      }
    }
    const dotted = (s.root === 'node' ? rest : s.steps).find((x) => 'attr' in x);
    if (dotted) {
      const fixed = s.root === 'node' ? `{node.${(first as { attr: string }).attr}${rest.map((x) => `[${'attr' in x ? x.attr : x.key}]`).join('')}}` : bracketForm(s);
      return `${fixed}: mappings are read with brackets (Ironic leaves ${s.text} unrendered)`;
    }
  }
  return null;
}

/** Is the value exactly one field (so it keeps the type of what it reads)? */
export function isSingleField(value: string): boolean {
  const segs = parse(value);
  return typeof segs !== 'string' && segs.length === 1 && typeof segs[0] !== 'string';
}

/** The fields a value reads, as written. */
export function templateFields(value: string): string[] {
  const segs = parse(value);
  return typeof segs === 'string' ? [] : segs.filter((s): s is Field => typeof s !== 'string').map((s) => s.text);
}

/** A field that reaches nothing; `field` is the field as written. */
export class TemplateMiss extends Error {
  constructor(readonly field: string) {
    super(`template ${field}: nothing at that path`);
  }
}

export type TemplateContext = Partial<Record<TemplateRoot, unknown>>;

function resolve(f: Field, ctx: TemplateContext): unknown {
  if (!(f.root in ctx)) throw new TemplateMiss(f.text);
  let cur: unknown = ctx[f.root as TemplateRoot];
  for (const s of f.steps) {
    const k = 'attr' in s ? s.attr : s.key;
    // Python's format index: digits index a list, anything else is a string key.
    if (Array.isArray(cur) && /^\d+$/.test(k) && Number(k) < cur.length) cur = cur[Number(k)];
    else if (cur !== null && typeof cur === 'object' && !Array.isArray(cur) && Object.prototype.hasOwnProperty.call(cur, k)) cur = (cur as Record<string, unknown>)[k];
    else throw new TemplateMiss(f.text);
  }
  if (cur === undefined) throw new TemplateMiss(f.text);
  return cur;
}

function pyRepr(v: unknown): string {
  return typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : pyStr(v);
}

/** What Python's str() gives, so rendered text reads as it would in Ironic. */
export function pyStr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

/**
 * Renders templates in a value, recursing into lists and mappings as Ironic
 * does. Throws TemplateMiss when a field reaches nothing; callers decide
 * whether that fails the rule or leaves the text as written.
 */
export function renderValue(value: unknown, ctx: TemplateContext): unknown {
  if (Array.isArray(value)) return value.map((v) => renderValue(v, ctx));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [renderValue(k, ctx) as string, renderValue(v, ctx)]));
  }
  if (typeof value !== 'string') return value;
  const segs = parse(value);
  if (typeof segs === 'string') return value; // refused at import; stored rules never get here
  if (segs.length === 1 && typeof segs[0] !== 'string') return resolve(segs[0], ctx);
  return segs.map((s) => (typeof s === 'string' ? s : pyStr(resolve(s, ctx)))).join('');
}
