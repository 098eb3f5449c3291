import YAML from 'yaml';

export type Format = 'table' | 'json' | 'yaml' | 'value';
export const FORMATS: Format[] = ['table', 'json', 'yaml', 'value'];

/** A column: the JSON key, the table heading, and how to read it from a row. */
export interface Column<T> {
  key: string;
  label: string;
  get: (row: T) => unknown;
}

export class UsageError extends Error {}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map(cell).join(', ');
  if (typeof v === 'object') return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}=${cell(x)}`).join(', ');
  return String(v);
}

function pick<T>(columns: Column<T>[], wanted: string[]): Column<T>[] {
  if (wanted.length === 0) return columns;
  return wanted.map((w) => {
    const c = columns.find((c) => c.key === w || c.label.toLowerCase() === w.toLowerCase());
    if (!c) throw new UsageError(`-c ${w}: no such column (columns: ${columns.map((c) => c.key).join(', ')})`);
    return c;
  });
}

/** A cell holding several lines (a script's stdout) takes several lines of its row, as the OpenStack client's tables do. */
function table(headers: string[], rows: string[][]): string {
  const split = (r: string[]) => r.map((c) => c.replace(/\n$/, '').split('\n'));
  const cells = [headers, ...rows].map(split);
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => Math.max(...r[i].map((l) => l.length)))));
  const line = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const fmt = (r: string[][]) => {
    const height = Math.max(...r.map((c) => c.length));
    return Array.from({ length: height }, (_, k) => '| ' + r.map((c, i) => (c[k] ?? '').padEnd(widths[i])).join(' | ') + ' |').join('\n');
  };
  const [head, ...body] = cells;
  return [line, fmt(head), line, ...body.map(fmt), line].join('\n') + '\n';
}

/** Renders a list of rows in the chosen format, with -c narrowing the columns. */
export function renderList<T>(rows: T[], columns: Column<T>[], format: Format, wanted: string[]): string {
  const cols = pick(columns, wanted);
  const objs = rows.map((r) => Object.fromEntries(cols.map((c) => [c.key, c.get(r) ?? null])));
  switch (format) {
    case 'json': return JSON.stringify(objs, null, 2) + '\n';
    case 'yaml': return YAML.stringify(objs);
    case 'value': return objs.map((o) => cols.map((c) => cell(o[c.key])).join(' ')).join('\n') + (objs.length ? '\n' : '');
    default: return table(cols.map((c) => c.label), rows.map((r) => cols.map((c) => cell(c.get(r)))));
  }
}

/** Renders one object as Field/Value (table) or as a mapping. */
export function renderOne<T>(row: T, columns: Column<T>[], format: Format, wanted: string[]): string {
  const cols = pick(columns, wanted);
  const obj = Object.fromEntries(cols.map((c) => [c.key, c.get(row) ?? null]));
  switch (format) {
    case 'json': return JSON.stringify(obj, null, 2) + '\n';
    case 'yaml': return YAML.stringify(obj);
    case 'value': return cols.map((c) => cell(obj[c.key])).join('\n') + '\n';
    default: return table(['Field', 'Value'], cols.map((c) => [c.key, cell(c.get(row))]));
  }
}
