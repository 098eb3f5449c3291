import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/logging.js';
import { OspError } from '../common/errors.js';
import { CHROOT_PHASES, PHASES, type Element, type Phase, type PhaseScript } from './elements.js';
import { ChrootMounts } from './chroot-mounts.js';
import { runCommand } from './run-command.js';

export interface Breakpoint {
  when: 'before' | 'after';
  phase: Phase;
}

/** Parses `--break before-install.d` style values, naming what is accepted on error. */
export function parseBreakpoint(value: string): Breakpoint {
  const m = /^(before|after)-(.+)$/.exec(value);
  const phase = m?.[2] as Phase | undefined;
  if (!m || !phase || !(PHASES as readonly string[]).includes(phase)) {
    throw new OspError('INVALID_ARGUMENT',
      `--break: '${value}' is not valid, expected before-PHASE or after-PHASE with PHASE one of ${PHASES.join(', ')}`,
      { field: 'break', value });
  }
  return { when: m[1] as 'before' | 'after', phase };
}

export interface PhaseRunnerOptions {
  elements: Element[];
  targetRoot: string;
  /** Scratch folder outside the image for host-side wrappers. */
  workDir: string;
  /** Variables every script sees (TARGET_ROOT is added for host-side phases). */
  env: Record<string, string>;
  logger: Logger;
  breakpoint?: Breakpoint;
  /** Copy script output to our stderr as it runs (the CLI); tests keep it captured. */
  streamOutput?: boolean;
  /** Called between phases; the builder uses it for its own steps (packages, ramdisk base). */
  hooks?: Partial<Record<`before:${Phase}` | `after:${Phase}`, () => Promise<void>>>;
}

const CHROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const IN_TARGET_HOOKS = 'tmp/osp-image-hooks';

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A wrapper that sources every environment.d file, then replaces itself with the script. */
function wrapperText(envFiles: string[]): string {
  return ['#!/bin/sh', 'set -e', ...envFiles.map((f) => `. ${shQuote(f)}`), 'exec "$@"', ''].join('\n');
}

/**
 * Runs the elements' phase scripts in diskimage-builder's order. Scripts of one
 * phase from all elements run sorted by name (NN-name), like dib's dib-run-parts.
 */
export class PhaseRunner {
  private targetRoot: string;

  constructor(private readonly opts: PhaseRunnerOptions) {
    this.targetRoot = opts.targetRoot;
  }

  /** Whole-disk builds move the root onto the mounted image before block-device.d. */
  setTargetRoot(root: string): void {
    this.targetRoot = root;
  }

  get currentRoot(): string {
    return this.targetRoot;
  }

  scriptsFor(phase: Phase): PhaseScript[] {
    const all = this.opts.elements.flatMap((e) => e.phases.get(phase) ?? []);
    return all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async runAll(): Promise<void> {
    for (const phase of PHASES) await this.runPhase(phase);
  }

  async runPhase(phase: Phase): Promise<void> {
    const o = this.opts;
    await o.hooks?.[`before:${phase}`]?.();
    this.maybeBreak('before', phase);
    const scripts = this.scriptsFor(phase);
    if (scripts.length > 0) {
      o.logger.info({ phase, scripts: scripts.map((s) => `${s.element}/${s.name}`) }, 'running phase');
      if (CHROOT_PHASES.has(phase)) await this.runInChroot(phase, scripts);
      else await this.runOnHost(phase, scripts);
    }
    await o.hooks?.[`after:${phase}`]?.();
    this.maybeBreak('after', phase);
  }

  private envFiles(): string[] {
    return this.opts.elements.flatMap((e) => e.environmentFiles);
  }

  private async runOnHost(phase: Phase, scripts: PhaseScript[]): Promise<void> {
    mkdirSync(this.opts.workDir, { recursive: true });
    const wrapper = join(this.opts.workDir, 'run-with-environment');
    writeFileSync(wrapper, wrapperText(this.envFiles()), { mode: 0o755 });
    for (const s of scripts) {
      const el = this.opts.elements.find((e) => e.name === s.element)!;
      const env = { ...process.env, ...this.opts.env, TARGET_ROOT: this.targetRoot, OSP_ELEMENT_DIR: el.dir };
      await this.exec(s, [wrapper, s.path], env);
    }
  }

  private async runInChroot(phase: Phase, scripts: PhaseScript[]): Promise<void> {
    const root = this.targetRoot;
    const hooks = join(root, IN_TARGET_HOOKS);
    rmSync(hooks, { recursive: true, force: true });
    mkdirSync(join(hooks, 'environment.d'), { recursive: true });
    // Scripts and environment files are copied in: the chroot cannot see the host's element folders.
    const envInside = this.envFiles().map((f, i) => {
      const name = `${String(i).padStart(3, '0')}-env`;
      copyFileSync(f, join(hooks, 'environment.d', name));
      return `/${IN_TARGET_HOOKS}/environment.d/${name}`;
    });
    writeFileSync(join(hooks, 'run-with-environment'), wrapperText(envInside), { mode: 0o755 });
    const mounts = new ChrootMounts(root, this.opts.logger);
    try {
      await mounts.start();
      for (const s of scripts) {
        const inside = join(hooks, `${s.element}--${s.name}`);
        copyFileSync(s.path, inside);
        chmodSync(inside, 0o755);
        const env = { PATH: CHROOT_PATH, HOME: '/root', LANG: 'C.UTF-8', ...this.opts.env };
        const shell = existsSync(join(root, 'bin/bash')) ? '/bin/bash' : '/bin/sh';
        await this.exec(s, ['chroot', root, shell, `/${IN_TARGET_HOOKS}/run-with-environment`, `/${IN_TARGET_HOOKS}/${s.element}--${s.name}`], env);
      }
    } finally {
      await mounts.stop();
      rmSync(hooks, { recursive: true, force: true });
    }
  }

  private async exec(s: PhaseScript, argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
    const r = await runCommand(argv, { env, inheritOutput: this.opts.streamOutput });
    if (r.exitCode !== 0) {
      const tail = r.stderr.trim().split('\n').slice(-5).join('\n');
      throw new OspError('IMAGE_SCRIPT_FAILED',
        `element '${s.element}' phase '${s.phase}' script '${s.name}' exited with code ${r.exitCode}${tail ? `: ${tail}` : ''}`,
        { element: s.element, phase: s.phase, script: s.name, exitCode: r.exitCode });
    }
  }

  private maybeBreak(when: 'before' | 'after', phase: Phase): void {
    const bp = this.opts.breakpoint;
    if (!bp || bp.when !== when || bp.phase !== phase) return;
    if (!process.stdin.isTTY) {
      this.opts.logger.warn({ break: `${when}-${phase}` }, 'break ignored: not an interactive run');
      return;
    }
    process.stderr.write(`osp-image: break ${when}-${phase}; TARGET_ROOT=${this.targetRoot}; exit the shell to continue\n`);
    spawnSync('bash', ['-i'], { stdio: 'inherit', cwd: this.targetRoot, env: { ...process.env, ...this.opts.env, TARGET_ROOT: this.targetRoot } });
  }
}
