import { lstat, readdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { OspError } from '../../common/errors.js';
import { atomicWrite } from '../fs/atomic-write.js';
import { runProcess } from '../process/run-process.js';
import { readControl, type FileControl } from './control.js';
import { IdResolver } from './ids.js';
import { renderTemplate } from './template.js';

export interface ApplyResult {
  /** In-system paths (as seen from the target root) that were (re)written. */
  written: string[];
  unchanged: string[];
  /** Targets deleted because they rendered empty with `allow_empty: false`. */
  removed: string[];
}

export interface ApplierDeps {
  root: string;
  templatesDir: string;
  /** Upper bound for one executable template. */
  execTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

interface Rendered {
  rel: string;
  target: string;
  body: string;
  control: FileControl;
}

/**
 * os-apply-config: renders every template of a tree mirroring `/` and writes
 * only the files whose content or metadata changed. Everything is rendered
 * before anything is written, so a bad template leaves the system untouched.
 */
export class Applier {
  private readonly ids: IdResolver;

  constructor(private readonly deps: ApplierDeps) {
    this.ids = new IdResolver(deps.root);
  }

  async apply(config: Record<string, unknown>): Promise<ApplyResult> {
    const rels = await listTemplates(this.deps.templatesDir);
    const rendered: Rendered[] = [];
    const errors: string[] = [];
    for (const rel of rels) {
      try {
        rendered.push(await this.render(rel, config));
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length > 0) {
      throw new OspError('AGENT_TEMPLATE_INVALID', errors.join('\n'), { count: errors.length });
    }
    const result: ApplyResult = { written: [], unchanged: [], removed: [] };
    for (const r of rendered) await this.write(r, result);
    return result;
  }

  private async render(rel: string, config: Record<string, unknown>): Promise<Rendered> {
    const src = path.join(this.deps.templatesDir, rel);
    const control = await readControl(`${src}.oac`);
    const st = await stat(src);
    let body: string;
    if ((st.mode & 0o111) !== 0) {
      const out = await runProcess(src, {
        env: this.deps.env ?? process.env,
        stdin: JSON.stringify(config),
        timeoutMs: this.deps.execTimeoutMs ?? 60_000,
        captureFullStdout: true,
      });
      if (out.exitCode !== 0 || out.timedOut) {
        const why = out.spawnError ?? (out.timedOut ? 'timed out' : `exited with status ${out.exitCode}`);
        throw new OspError('AGENT_TEMPLATE_INVALID', `executable template ${src}: ${why}: ${out.stderrTail.trim()}`, { file: src });
      }
      body = out.stdout ?? '';
    } else {
      body = renderTemplate(await readFile(src, 'utf8'), config, src);
    }
    return { rel, target: path.join(this.deps.root, rel), body, control };
  }

  private async write(r: Rendered, result: ApplyResult): Promise<void> {
    const shown = `/${r.rel}`;
    const current = await currentFile(r.target);
    if (r.body.length === 0 && !r.control.allowEmpty) {
      if (current) {
        await unlink(r.target);
        result.removed.push(shown);
      } else result.unchanged.push(shown);
      return;
    }
    const uid = r.control.owner === undefined ? undefined : await this.ids.uid(r.control.owner, path.join(this.deps.templatesDir, r.rel));
    const gid = r.control.group === undefined ? undefined : await this.ids.gid(r.control.group, path.join(this.deps.templatesDir, r.rel));
    // Without a mode in the control file an existing file keeps its mode.
    const mode = r.control.mode ?? current?.mode ?? 0o644;
    if (
      current &&
      current.body === r.body &&
      current.mode === mode &&
      (uid === undefined || uid === current.uid) &&
      (gid === undefined || gid === current.gid)
    ) {
      result.unchanged.push(shown);
      return;
    }
    await atomicWrite(r.target, r.body, { mode, uid, gid });
    result.written.push(shown);
  }
}

async function currentFile(file: string): Promise<{ body: string; mode: number; uid: number; gid: number } | undefined> {
  try {
    const st = await lstat(file);
    if (!st.isFile()) return undefined;
    return { body: await readFile(file, 'utf8'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Template paths relative to the tree, `.oac` control files excluded. */
async function listTemplates(dir: string, prefix = ''): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(path.join(dir, prefix), { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && prefix === '') return [];
    throw e;
  }
  const out: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const rel = path.join(prefix, e.name);
    if (e.isDirectory()) out.push(...(await listTemplates(dir, rel)));
    else if (e.isFile() && !e.name.endsWith('.oac')) out.push(rel);
  }
  return out;
}
