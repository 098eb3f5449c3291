import path from 'node:path/posix';
import { OspError } from '../../../common/errors.js';

/**
 * The operator's template tree and environment files, as sent with a stack
 * request. ospd never reads the operator's filesystem: every file a template
 * or environment names must be in here, under a normalised relative path.
 */
export interface Bundle {
  files: Map<string, Buffer | string>;
}

export interface BundleLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
}

// TripleO's largest single templates are ~100 KiB and a full tree ~10 MiB;
// the limits leave room for that and keep a request well inside gRPC's frame.
export const DEFAULT_BUNDLE_LIMITS: BundleLimits = { maxFileBytes: 1024 * 1024, maxTotalBytes: 32 * 1024 * 1024 };

const byteLength = (c: Buffer | string): number => (typeof c === 'string' ? Buffer.byteLength(c) : c.length);

/**
 * A bundle path in its one spelling (`a/b.yaml`), or undefined when the name
 * is absolute, a URL, or climbs out of the bundle.
 */
export function normaliseBundlePath(name: string): string | undefined {
  if (name === '' || name.includes('\0') || name.includes('\\')) return undefined;
  if (name.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(name)) return undefined;
  const n = path.normalize(name);
  if (n === '.' || n === '..' || n.startsWith('../')) return undefined;
  return n.replace(/\/$/, '');
}

/**
 * A file named by `ref` from inside the bundle file `from` (get_file,
 * resource_registry, a template used as a type): relative to `from`'s folder.
 */
export function resolveInBundle(from: string, ref: string): string | undefined {
  if (ref.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(ref)) return undefined;
  return normaliseBundlePath(path.join(path.dirname(from), ref));
}

/**
 * Checks the limits and normalises every name; throws a one-line refusal
 * naming the file and the limit.
 */
export function makeBundle(files: Map<string, Buffer | string> | Record<string, Buffer | string>, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS): Bundle {
  const entries = files instanceof Map ? [...files.entries()] : Object.entries(files);
  const out = new Map<string, Buffer | string>();
  let total = 0;
  for (const [name, content] of entries) {
    const n = normaliseBundlePath(name);
    if (n === undefined) {
      throw new OspError('TEMPLATE_INVALID', `bundle: file name ${JSON.stringify(name)}: expected a relative path inside the bundle`, { field: 'files', value: name, expected: 'a relative path inside the bundle' });
    }
    if (out.has(n)) throw new OspError('TEMPLATE_INVALID', `bundle: file ${n} given twice (as ${JSON.stringify(name)})`, { field: 'files', value: name });
    const size = byteLength(content);
    if (size > limits.maxFileBytes) {
      throw new OspError('TEMPLATE_BUNDLE_TOO_LARGE', `bundle: file ${n} is ${size} bytes; the limit per file is ${limits.maxFileBytes} bytes`, { field: 'files', value: n, expected: `at most ${limits.maxFileBytes} bytes per file` });
    }
    total += size;
    if (total > limits.maxTotalBytes) {
      throw new OspError('TEMPLATE_BUNDLE_TOO_LARGE', `bundle: ${total} bytes or more in total; the limit is ${limits.maxTotalBytes} bytes`, { field: 'files', expected: `at most ${limits.maxTotalBytes} bytes in total` });
    }
    out.set(n, content);
  }
  return { files: out };
}

/** The text of a bundle file, or undefined when the bundle does not hold it. */
export function readBundleText(bundle: Bundle, name: string): string | undefined {
  const c = bundle.files.get(name);
  return c === undefined ? undefined : typeof c === 'string' ? c : c.toString('utf8');
}
