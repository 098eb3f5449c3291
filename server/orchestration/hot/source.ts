import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import type { HotProblem, Position } from './problems.js';

/**
 * YAML parsed into plain values (objects, arrays, strings, numbers, booleans,
 * null) that remember where they came from: every mapping and sequence
 * parsed here maps to its own position and to the position of each key and
 * item, so a problem found anywhere later names file:line:column without the
 * values changing shape.
 */
interface Located {
  at: Position;
  /** Per key (mappings) or index (sequences): where the key and the value start. */
  keys: Map<string | number, { key: Position; value: Position }>;
}

const where = new WeakMap<object, Located>();

/** Where a parsed mapping or sequence starts, or where its `key` (or item) starts. */
export function positionOf(container: unknown, key?: string | number): Position | undefined {
  if (typeof container !== 'object' || container === null) return undefined;
  const l = where.get(container);
  if (!l) return undefined;
  if (key === undefined) return l.at;
  return l.keys.get(key)?.key ?? l.at;
}

/** Where the value under `key` starts (for a scalar value the problem is in). */
export function valuePositionOf(container: unknown, key: string | number): Position | undefined {
  if (typeof container !== 'object' || container === null) return undefined;
  const l = where.get(container);
  return l?.keys.get(key)?.value ?? l?.at;
}

export interface ParsedYaml {
  value: unknown;
  problems: HotProblem[];
}

export function parseYaml(file: string, text: string): ParsedYaml {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const pos = (offset: number | undefined): Position => {
    const p = lc.linePos(offset ?? 0);
    return { file, line: p.line, column: p.col };
  };
  const problems: HotProblem[] = [...doc.errors, ...doc.warnings].map((e) => ({ ...pos(e.pos[0]), message: `YAML: ${e.message.split('\n')[0]}` }));
  if (doc.errors.length > 0) return { value: undefined, problems };
  return { value: toPlain(doc, doc.contents as Node | null, pos, problems, 0), problems };
}

// Alias chains deeper than this are a billion-laughs bomb, not a template.
const MAX_DEPTH = 200;

function toPlain(doc: Document, node: Node | null, pos: (o: number | undefined) => Position, problems: HotProblem[], depth: number): unknown {
  if (node === null || node === undefined) return null;
  if (depth > MAX_DEPTH) {
    problems.push({ ...pos(node.range?.[0]), message: `YAML: nesting deeper than ${MAX_DEPTH} levels` });
    return null;
  }
  if (isAlias(node)) return toPlain(doc, node.resolve(doc) as Node | null, pos, problems, depth + 1);
  if (isScalar(node)) return node.value ?? null;
  if (isMap(node)) {
    const out: Record<string, unknown> = {};
    const keys: Located['keys'] = new Map();
    for (const pair of node.items) {
      const k = pair.key as Node | null;
      const kv = isScalar(k) ? k.value : toPlain(doc, k, pos, problems, depth + 1);
      const name = kv === null || kv === undefined ? '' : typeof kv === 'object' ? JSON.stringify(kv) : String(kv);
      const v = pair.value as Node | null;
      Object.defineProperty(out, name, { value: toPlain(doc, v, pos, problems, depth + 1), enumerable: true, writable: true, configurable: true });
      keys.set(name, { key: pos(k?.range?.[0]), value: pos(v?.range?.[0] ?? k?.range?.[1]) });
    }
    where.set(out, { at: pos(node.range?.[0]), keys });
    return out;
  }
  if (isSeq(node)) {
    const out: unknown[] = [];
    const keys: Located['keys'] = new Map();
    node.items.forEach((item, i) => {
      const n = item as Node | null;
      out.push(toPlain(doc, n, pos, problems, depth + 1));
      const p = pos(n?.range?.[0] ?? node.range?.[0]);
      keys.set(i, { key: p, value: p });
    });
    where.set(out, { at: pos(node.range?.[0]), keys });
    return out;
  }
  return null;
}

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
