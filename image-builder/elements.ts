import { existsSync, readdirSync, readFileSync, statSync, accessSync, constants } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { OspError } from '../common/errors.js';

/** diskimage-builder's phase order; the builder runs them exactly in this sequence. */
export const PHASES = [
  'root.d', 'extra-data.d', 'pre-install.d', 'install.d', 'post-install.d',
  'block-device.d', 'finalise.d', 'cleanup.d',
] as const;
export type Phase = (typeof PHASES)[number];

/** Phases whose scripts run inside the image root (chroot), as in diskimage-builder. */
export const CHROOT_PHASES: ReadonlySet<Phase> = new Set(['pre-install.d', 'install.d', 'post-install.d', 'finalise.d']);

/** dib runs only hook names made of these characters (skips editor backups, READMEs). */
const SCRIPT_NAME = /^[0-9A-Za-z_-]+$/;
const ELEMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface PackageInstall {
  name: string;
  /** Install only for this image type family ('ramdisk' or 'disk'), or always when absent. */
  imageType?: 'ramdisk' | 'disk';
  uninstall: boolean;
}

export interface PhaseScript {
  element: string;
  phase: Phase;
  name: string;
  path: string;
}

export interface Element {
  name: string;
  dir: string;
  deps: string[];
  provides: string[];
  packages: PackageInstall[];
  /** Files of environment.d, in lexical order: sourced before every phase script. */
  environmentFiles: string[];
  phases: Map<Phase, PhaseScript[]>;
  /** Extra lists this project reads (binary-deps.d as in dib's ramdisk element, kernel-modules). */
  binaryDeps: string[];
  kernelModules: string[];
}

/** The built-in element folder, next to this module in the source tree (and dist/). */
export function builtinElementsDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  // Compiled code lives in dist/image-builder; the element scripts stay in the source tree.
  const candidates = [join(here, 'elements'), resolve(here, '../../image-builder/elements')];
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

/** ELEMENTS_PATH entries first, then the built-in elements: the first folder holding a name wins. */
export function elementSearchPath(elementsPathEnv: string | undefined): string[] {
  const user = (elementsPathEnv ?? '').split(':').filter((p) => p.length > 0).map((p) => resolve(p));
  return [...user, builtinElementsDir()];
}

function readList(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.length > 0);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function parsePackageInstalls(file: string, element: string): PackageInstall[] {
  if (!existsSync(file)) return [];
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new OspError('IMAGE_ELEMENT_INVALID', `element '${element}': ${file} is not valid YAML: ${(e as Error).message}`, { element, file });
  }
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new OspError('IMAGE_ELEMENT_INVALID', `element '${element}': ${file} must be a mapping of package name to options, got ${Array.isArray(doc) ? 'a list' : typeof doc}`, { element, file });
  }
  const out: PackageInstall[] = [];
  for (const [name, opts] of Object.entries(doc as Record<string, unknown>)) {
    const o = (opts ?? {}) as Record<string, unknown>;
    if (typeof o !== 'object') {
      throw new OspError('IMAGE_ELEMENT_INVALID', `element '${element}': package-installs.yaml entry '${name}' must be empty or a mapping, got ${JSON.stringify(opts)}`, { element });
    }
    const t = o['image-type'];
    if (t !== undefined && t !== 'ramdisk' && t !== 'disk') {
      throw new OspError('IMAGE_ELEMENT_INVALID', `element '${element}': package '${name}' image-type is ${JSON.stringify(t)}, expected 'ramdisk' or 'disk'`, { element });
    }
    out.push({ name, imageType: t as PackageInstall['imageType'], uninstall: o.uninstall === true });
  }
  return out;
}

/** Reads one element folder; does not follow its dependencies. */
export function loadElement(name: string, dir: string): Element {
  const phases = new Map<Phase, PhaseScript[]>();
  for (const phase of PHASES) {
    const pdir = join(dir, phase);
    if (!existsSync(pdir)) continue;
    const scripts = readdirSync(pdir)
      .filter((f) => SCRIPT_NAME.test(f) && isExecutable(join(pdir, f)))
      .sort()
      .map((f) => ({ element: name, phase, name: f, path: join(pdir, f) }));
    if (scripts.length > 0) phases.set(phase, scripts);
  }
  const envDir = join(dir, 'environment.d');
  const environmentFiles = existsSync(envDir)
    ? readdirSync(envDir).filter((f) => !f.startsWith('.')).sort().map((f) => join(envDir, f))
    : [];
  const bdDir = join(dir, 'binary-deps.d');
  const binaryDeps = existsSync(bdDir) ? readdirSync(bdDir).sort().flatMap((f) => readList(join(bdDir, f))) : [];
  return {
    name,
    dir,
    deps: readList(join(dir, 'element-deps')),
    provides: readList(join(dir, 'element-provides')),
    packages: parsePackageInstalls(join(dir, 'package-installs.yaml'), name),
    environmentFiles,
    phases,
    binaryDeps,
    kernelModules: readList(join(dir, 'kernel-modules')),
  };
}

/** Every element visible on a search path, earlier folders shadowing later ones. */
export class ElementLibrary {
  private readonly found = new Map<string, string>();

  constructor(readonly searchPath: string[]) {
    for (const base of searchPath) {
      if (!existsSync(base)) continue;
      for (const entry of readdirSync(base).sort()) {
        const dir = join(base, entry);
        if (!ELEMENT_NAME.test(entry) || !statSync(dir).isDirectory()) continue;
        if (!this.found.has(entry)) this.found.set(entry, dir);
      }
    }
  }

  names(): string[] {
    return [...this.found.keys()].sort();
  }

  has(name: string): boolean {
    return this.found.has(name);
  }

  /** Throws IMAGE_ELEMENT_NOT_FOUND naming the element, who asked for it and where we looked. */
  get(name: string, requiredBy?: string): Element {
    const dir = this.found.get(name);
    if (!dir) {
      const by = requiredBy ? ` (required by '${requiredBy}')` : ' (requested on the command line)';
      throw new OspError('IMAGE_ELEMENT_NOT_FOUND',
        `element '${name}' not found${by}; searched ELEMENTS_PATH then built-ins: ${this.searchPath.join(':')}`,
        { element: name, requiredBy, searchPath: this.searchPath });
    }
    return loadElement(name, dir);
  }
}
