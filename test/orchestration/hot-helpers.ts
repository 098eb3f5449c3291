import { makeBundle, type Bundle } from '../../server/orchestration/hot/bundle.js';
import { resolve, type ResolveContext } from '../../server/orchestration/hot/functions.js';
import { parseYaml } from '../../server/orchestration/hot/source.js';
import { parseVersion } from '../../server/orchestration/hot/versions.js';

/** A bundle from inline files; YAML text is dedented so tests read like templates. */
export function bundleOf(files: Record<string, string>): Bundle {
  return makeBundle(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, dedent(v)])));
}

export function dedent(s: string): string {
  const lines = s.replace(/^\n/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.match(/^ */)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** Evaluates a YAML snippet as a value of a template of `version`, with these parameters and resources. */
export function evalHot(yaml: string, opts: { version?: string; params?: Record<string, unknown>; conditions?: Record<string, boolean>; files?: Record<string, string>; attrs?: Record<string, Record<string, unknown>> } = {}): unknown {
  const parsed = parseYaml('t.yaml', dedent(yaml));
  if (parsed.problems.length) throw new Error(parsed.problems.map((p) => p.message).join('\n'));
  const ctx: ResolveContext = {
    version: parseVersion(opts.version ?? 'wallaby')!,
    file: 't.yaml',
    param: (n) => { if (!(n in (opts.params ?? {}))) throw new Error(`no parameter ${n}`); return opts.params![n]; },
    resourceRef: (n) => `${n}-id`,
    attr: (r, a, path) => {
      let v: unknown = a === undefined ? opts.attrs?.[r] : opts.attrs?.[r]?.[a];
      for (const k of path) v = (v as Record<string | number, unknown>)[k];
      return v;
    },
    condition: (n) => opts.conditions?.[n] ?? false,
    file_: (ref) => opts.files?.[ref] ?? '',
  };
  return resolve(parsed.value, ctx);
}
