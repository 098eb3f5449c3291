import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { UsageError } from './output.js';

/**
 * What a stack request carries: ospd never reads the operator's filesystem,
 * so ospctl reads the template and the -e files and follows what they name,
 * as python-heatclient does: `get_file` arguments, resource types that are
 * template files, and `resource_registry` values that are files (relative to
 * the environment file). Paths in the bundle are relative to the deepest
 * folder holding every file, so none climbs with `..`.
 *
 * Only references are read from the YAML; nothing is evaluated. A file that
 * does not parse is sent as it is, and ospd reports its syntax error with
 * line and column. Absolute paths and URLs are left for ospd to refuse, also
 * with the position of the reference.
 */
export interface StackBundle {
  files: Record<string, Buffer>;
  template: string;
  environments: string[];
}

type Kind = 'template' | 'environment' | 'file';

interface Wanted {
  abs: string;
  kind: Kind;
  /** How the operator or a file named it, for errors. */
  namedBy: string;
}

/** Heat's test (and ospd's, in hot/environment.ts) for a type or registry value naming a template. */
const isTemplateName = (s: string): boolean => /\.(ya?ml|template)$/.test(s) || s.includes('/');
const isLocalRelative = (s: string): boolean => s !== '' && !path.isAbsolute(s) && !/^[a-z][a-z0-9+.-]*:/i.test(s);

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parsed(text: string): unknown {
  try {
    return YAML.parse(text, { uniqueKeys: false });
  } catch {
    return undefined;
  }
}

/** Every `get_file` argument anywhere in a value. */
function getFileRefs(v: unknown, out: string[]): void {
  if (Array.isArray(v)) {
    for (const x of v) getFileRefs(x, out);
    return;
  }
  if (!isMapping(v)) return;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'get_file' && typeof x === 'string') out.push(x);
    else getFileRefs(x, out);
  }
}

/** Template-file `type`s in the resources section, also inside properties (a ResourceGroup's resource_def). */
function typeRefs(v: unknown, out: string[]): void {
  if (Array.isArray(v)) {
    for (const x of v) typeRefs(x, out);
    return;
  }
  if (!isMapping(v)) return;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'type' && typeof x === 'string') {
      if (isTemplateName(x)) out.push(x);
    } else {
      typeRefs(x, out);
    }
  }
}

function templateRefs(doc: unknown): { ref: string; kind: Kind; what: string }[] {
  if (!isMapping(doc)) return [];
  const files: string[] = [];
  const types: string[] = [];
  getFileRefs(doc, files);
  typeRefs(doc.resources, types);
  return [...files.map((ref) => ({ ref, kind: 'file' as const, what: 'get_file' })), ...types.map((ref) => ({ ref, kind: 'template' as const, what: 'type' }))];
}

function environmentRefs(doc: unknown): { ref: string; kind: Kind; what: string }[] {
  if (!isMapping(doc) || !isMapping(doc.resource_registry)) return [];
  const out: { ref: string; kind: Kind; what: string }[] = [];
  const add = (holder: Record<string, unknown>, where: string) => {
    for (const [k, v] of Object.entries(holder)) {
      if (typeof v === 'string' && isTemplateName(v)) out.push({ ref: v, kind: 'template', what: `${where}"${k}"` });
    }
  };
  const { resources, base_url: _baseUrl, ...types } = doc.resource_registry;
  add(types, 'resource_registry: ');
  if (isMapping(resources)) {
    for (const [res, map] of Object.entries(resources)) if (isMapping(map)) add(map, `resource_registry: resources: ${res}: `);
  }
  return out;
}

async function readLocal(w: Wanted): Promise<Buffer> {
  try {
    const st = await fs.stat(w.abs);
    if (!st.isFile()) throw new UsageError(`${w.namedBy}: ${w.abs} is not a regular file`);
    return await fs.readFile(w.abs);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${w.namedBy}: cannot read ${w.abs}: ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
  }
}

/** The deepest folder that holds every file. */
function commonRoot(files: string[]): string {
  let root = path.dirname(files[0]);
  for (const f of files) {
    for (let rel = path.relative(root, f); rel === '..' || rel.startsWith(`..${path.sep}`); rel = path.relative(root, f)) root = path.dirname(root);
  }
  return root;
}

/**
 * Reads the template, the environments and everything they reference, recursively.
 * `generated` holds files made in memory (absolute path → content), read as if on disk:
 * the overcloud's rendered template, whose references resolve from its place in the tree.
 */
export async function collectStackBundle(template: string, environments: string[], cwd = process.cwd(), generated: Record<string, Buffer> = {}): Promise<StackBundle> {
  const read = new Map<string, Buffer>(Object.entries(generated));
  const queue: Wanted[] = [
    { abs: path.resolve(cwd, template), kind: 'template', namedBy: `-t ${template}` },
    ...environments.map((e): Wanted => ({ abs: path.resolve(cwd, e), kind: 'environment', namedBy: `-e ${e}` })),
  ];
  // A file is parsed once even when it is reached as raw get_file content and as a template.
  const parsedAs = new Set<string>();
  while (queue.length) {
    const w = queue.shift()!;
    if (!read.has(w.abs)) read.set(w.abs, await readLocal(w));
    if (w.kind === 'file' || parsedAs.has(`${w.kind}:${w.abs}`)) continue;
    parsedAs.add(`${w.kind}:${w.abs}`);
    const doc = parsed(read.get(w.abs)!.toString('utf8'));
    const refs = w.kind === 'template' ? templateRefs(doc) : environmentRefs(doc);
    const shown = path.relative(cwd, w.abs) || w.abs;
    for (const r of refs) {
      if (!isLocalRelative(r.ref)) continue;
      queue.push({ abs: path.resolve(path.dirname(w.abs), r.ref), kind: r.kind, namedBy: `${shown}: ${r.what} ${r.ref}` });
    }
  }
  const root = commonRoot([...read.keys()]);
  const rel = (abs: string) => path.relative(root, abs).split(path.sep).join('/');
  return {
    files: Object.fromEntries([...read].map(([abs, content]) => [rel(abs), content])),
    template: rel(path.resolve(cwd, template)),
    environments: environments.map((e) => rel(path.resolve(cwd, e))),
  };
}
