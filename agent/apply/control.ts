import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { OspError } from '../../common/errors.js';
import { isPlainObject } from '../collect/merge.js';

/** What a `<file>.oac` control file may set on the rendered file. */
export interface FileControl {
  owner?: string | number;
  group?: string | number;
  mode?: number;
  /** false: an empty render deletes the target instead of writing it. */
  allowEmpty: boolean;
}

const KEYS = new Set(['owner', 'group', 'mode', 'allow_empty']);

export async function readControl(file: string): Promise<FileControl> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { allowEmpty: true };
    throw e;
  }
  return parseControl(text, file);
}

/**
 * Parsed as YAML 1.1 like os-apply-config's PyYAML, so `mode: 0755` is octal.
 * A file holding only a comment is valid and changes nothing.
 */
export function parseControl(text: string, file: string): FileControl {
  let doc: unknown;
  try {
    doc = parse(text, { version: '1.1' });
  } catch (e) {
    throw new OspError('AGENT_CONTROL_INVALID', `control file ${file}: invalid YAML: ${(e as Error).message}`, { file });
  }
  if (doc == null) return { allowEmpty: true };
  if (!isPlainObject(doc)) throw bad(file, 'document', doc, 'a mapping of owner/group/mode/allow_empty');
  for (const k of Object.keys(doc)) {
    if (!KEYS.has(k)) throw bad(file, k, doc[k], 'one of the keys owner, group, mode, allow_empty');
  }
  const ctl: FileControl = { allowEmpty: true };
  for (const k of ['owner', 'group'] as const) {
    const v = doc[k];
    if (v === undefined) continue;
    if (typeof v === 'string' && v.length > 0) ctl[k] = v;
    else if (typeof v === 'number' && Number.isInteger(v) && v >= 0) ctl[k] = v;
    else throw bad(file, k, v, 'a user/group name or a non-negative numeric id');
  }
  if (doc.mode !== undefined) ctl.mode = parseMode(file, doc.mode);
  if (doc.allow_empty !== undefined) {
    if (typeof doc.allow_empty !== 'boolean') throw bad(file, 'allow_empty', doc.allow_empty, 'true or false');
    ctl.allowEmpty = doc.allow_empty;
  }
  return ctl;
}

function parseMode(file: string, v: unknown): number {
  // A quoted "0644" is octal text; an unquoted 0644 was already read as octal by YAML 1.1.
  const n = typeof v === 'string' && /^0?[0-7]{3,4}$/.test(v) ? parseInt(v, 8) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0o7777) {
    throw bad(file, 'mode', v, 'an octal file mode such as 0644');
  }
  return n;
}

function bad(file: string, field: string, value: unknown, expected: string): OspError {
  return new OspError(
    'AGENT_CONTROL_INVALID',
    `control file ${file}: ${field} = ${JSON.stringify(value)}; expected ${expected}`,
    { file, field },
  );
}
