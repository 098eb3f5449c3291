import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/logging.js';
import { OspError } from '../common/errors.js';
import { ElementLibrary, elementSearchPath, type Element } from './elements.js';
import { resolveElements } from './resolve.js';
import { PhaseRunner, type Breakpoint } from './phases.js';
import { DebCache } from './deb-cache.js';
import { RamdiskAssembler, RAMDISK_COMPRESSIONS, type KernelInfo, type RamdiskCompression } from './ramdisk.js';
import { checksumOutput, type BuildManifest, type OutputFile } from './manifest.js';
import { mountsUnder } from './chroot-mounts.js';
import { DiskImageWriter } from './disk.js';

export type ImageType = 'ramdisk' | 'raw' | 'qcow2';
export const IMAGE_TYPES: readonly ImageType[] = ['ramdisk', 'raw', 'qcow2'];

/** Compressed initramfs budget from the issue: the agent binary is most of it. */
export const RAMDISK_BUDGET_BYTES = 40 * 1024 * 1024;

export interface BuildRequest {
  /** Output path prefix: OUT.kernel/OUT.initramfs or OUT.raw/OUT.qcow2. */
  output: string;
  type: ImageType;
  elements: string[];
  packages: string[];
  sizeGiB?: number;
  breakpoint?: Breakpoint;
  /**
   * Initramfs compression; xz by default because a gzip'd Node single executable alone
   * is ~32 MB and the whole ramdisk would miss the 40 MB budget.
   */
  ramdiskCompression?: RamdiskCompression;
  /** The command line as typed, recorded inside the image. */
  arguments: string[];
}

export interface BuilderDeps {
  logger: Logger;
  /** ELEMENTS_PATH value (colon-separated); built-ins are searched after it. */
  elementsPath?: string;
  /** Downloaded .debs and debootstrap tarballs; default ~/.cache/osp-image. */
  cacheDir?: string;
  streamOutput?: boolean;
  /** Variables passed to every script in addition to the builder's own. */
  extraEnv?: Record<string, string>;
}

/** The repository root: the agent element defaults to <repo>/dist/osp-agent. */
export function repoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = resolve(here, '..');
  return existsSync(join(up, 'package.json')) ? up : resolve(here, '../..');
}

export function defaultCacheDir(): string {
  return process.env.OSP_IMAGE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'osp-image');
}

/** Variables a dib user would recognise are recorded in /etc/dib_environment. */
const RECORDED_ENV = /^(DIB_|OSP_|ELEMENTS_PATH$|IMAGE_)/;

export class ImageBuilder {
  private readonly library: ElementLibrary;
  private readonly cacheDir: string;

  constructor(private readonly deps: BuilderDeps) {
    this.library = new ElementLibrary(elementSearchPath(deps.elementsPath));
    this.cacheDir = deps.cacheDir ?? defaultCacheDir();
  }

  listElements(): string[] {
    return this.library.names();
  }

  show(name: string): { element: Element; resolved: string[] } {
    const element = this.library.get(name);
    let resolved: string[] = [];
    try {
      resolved = resolveElements([name], this.library).ordered.map((e) => e.name);
    } catch (e) {
      // show still describes the element when its dependencies are incomplete (e.g. need a provider).
      this.deps.logger.debug({ err: (e as Error).message }, 'dependencies not resolvable alone');
    }
    return { element, resolved };
  }

  async build(req: BuildRequest): Promise<BuildManifest> {
    const started = Date.now();
    if (!IMAGE_TYPES.includes(req.type)) {
      throw new OspError('INVALID_ARGUMENT', `type: '${req.type}' is not valid, expected one of ${IMAGE_TYPES.join(', ')}`, { field: 'type', value: req.type });
    }
    if (req.sizeGiB !== undefined && (!Number.isFinite(req.sizeGiB) || req.sizeGiB <= 0 || req.sizeGiB > 2048)) {
      throw new OspError('INVALID_ARGUMENT', `size: '${req.sizeGiB}' is not valid, expected GiB between 0 and 2048`, { field: 'size', value: req.sizeGiB });
    }
    const compression = req.ramdiskCompression ?? 'xz';
    if (!RAMDISK_COMPRESSIONS.includes(compression)) {
      throw new OspError('INVALID_ARGUMENT', `compression: '${compression}' is not valid, expected one of ${RAMDISK_COMPRESSIONS.join(', ')}`, { field: 'compression', value: compression });
    }
    const { ordered } = resolveElements(req.elements, this.library);
    const output = resolve(req.output);
    mkdirSync(dirname(output), { recursive: true });
    const work = mkdtempSync(join(dirname(output), '.osp-image-build-'));
    const root = join(work, 'root');
    mkdirSync(root);
    const log = this.deps.logger;
    const isRamdisk = req.type === 'ramdisk';
    const packages = [
      ...ordered.flatMap((e) => e.packages.filter((p) => !p.uninstall && (p.imageType === undefined || p.imageType === (isRamdisk ? 'ramdisk' : 'disk'))).map((p) => p.name)),
      ...req.packages,
    ];
    const env: Record<string, string> = {
      ...Object.fromEntries(Object.entries(process.env).filter(([k, v]) => RECORDED_ENV.test(k) && v !== undefined) as Array<[string, string]>),
      ...this.deps.extraEnv,
      IMAGE_NAME: output.split('/').pop()!,
      IMAGE_ELEMENT: ordered.map((e) => e.name).join(' '),
      OSP_IMAGE_TYPE: req.type,
      OSP_REPO: repoDir(),
      OSP_IMAGE_CACHE: this.cacheDir,
      OSP_IMAGE_PACKAGES: packages.join(' '),
      // package-installs.yaml `uninstall: true`: removed at the end of the build (dib semantics).
      OSP_IMAGE_UNINSTALL: ordered.flatMap((e) => e.packages.filter((p) => p.uninstall).map((p) => p.name)).join(' '),
      DIB_IMAGE_SIZE: String(req.sizeGiB ?? 4),
    };
    const debs = new DebCache(this.cacheDir, log);
    const ramdisk = new RamdiskAssembler(root, debs, log);
    let kernel: KernelInfo | undefined;
    const outputs: OutputFile[] = [];
    let agentVersion = 'none';
    const recordEnvironment = async (): Promise<void> => {
      const root = runner.currentRoot;
      // As dib's /etc/dib_environment: what built this image, so it can be rebuilt.
      mkdirSync(join(root, 'etc'), { recursive: true });
      const lines = Object.entries(env).sort().map(([k, v]) => `export ${k}=${JSON.stringify(v)}`);
      writeFileSync(join(root, 'etc/dib_environment'), lines.join('\n') + '\n');
      mkdirSync(join(root, 'etc/osp-image'), { recursive: true });
      writeFileSync(join(root, 'etc/osp-image/build.json'), JSON.stringify({ arguments: req.arguments, elements: env.IMAGE_ELEMENT.split(' '), packages, type: req.type, builtAt: new Date(started).toISOString() }, null, 2) + '\n');
    };
    const hooks: NonNullable<ConstructorParameters<typeof PhaseRunner>[0]['hooks']> = {};
    const runner = new PhaseRunner({
      elements: ordered, targetRoot: root, workDir: join(work, 'hooks'), env, logger: log,
      breakpoint: req.breakpoint, streamOutput: this.deps.streamOutput,
      hooks,
    });
    Object.assign(hooks, isRamdisk
        ? {
            'after:root.d': async () => {
              await ramdisk.installBusybox();
              kernel = await ramdisk.installKernel('linux-image-amd64', ordered.flatMap((e) => e.kernelModules));
              for (const p of packages) {
                const tree = await debs.extract(p);
                copyTree(tree, root);
              }
              await ramdisk.installHostBinaries([...new Set(ordered.flatMap((e) => e.binaryDeps))]);
            },
            'after:post-install.d': async () => { await ramdisk.resolveLibraries(); },
            'before:finalise.d': recordEnvironment,
          }
        : { 'before:finalise.d': recordEnvironment });
    const disk = isRamdisk ? undefined : new DiskImageWriter({ root, work, output, type: req.type as 'raw' | 'qcow2', sizeGiB: req.sizeGiB ?? 4, logger: log, env });
    if (disk) Object.assign(hooks, disk.hooks(runner));
    try {
      await runner.runAll();
      if (isRamdisk) {
        await ramdisk.pack(`${output}.initramfs`, compression);
        copyFileSync(kernel!.vmlinuz, `${output}.kernel`);
        outputs.push(await checksumOutput(`${output}.kernel`), await checksumOutput(`${output}.initramfs`));
      } else {
        outputs.push(await checksumOutput(await disk!.finish()));
      }
      const versionFile = join(root, 'etc/osp-agent/version');
      if (existsSync(versionFile)) agentVersion = readFileSync(versionFile, 'utf8').trim();
    } finally {
      await disk?.stop();
      const leaked = mountsUnder(work);
      if (leaked.length > 0) log.error({ leaked }, 'mounts left under the build folder; not deleting it');
      else rmSync(work, { recursive: true, force: true });
    }
    const manifest: BuildManifest = {
      schema: 'osp-image/manifest/v1',
      imageName: env.IMAGE_NAME,
      imageType: req.type,
      elements: ordered.map((e) => e.name),
      packages,
      agentVersion,
      ramdiskCompression: isRamdisk ? compression : undefined,
      kernelVersion: kernel?.version,
      absentKernelModules: kernel?.absentModules,
      outputs,
      buildStartedAt: new Date(started).toISOString(),
      buildDurationMs: Date.now() - started,
      arguments: req.arguments,
    };
    if (isRamdisk) {
      const initramfs = outputs.find((o) => o.path.endsWith('.initramfs'))!;
      manifest.initramfsSizeBytes = initramfs.sizeBytes;
      manifest.initramfsBudgetBytes = RAMDISK_BUDGET_BYTES;
      if (initramfs.sizeBytes > RAMDISK_BUDGET_BYTES) log.warn({ sizeBytes: initramfs.sizeBytes }, 'initramfs over its 40 MB budget');
    }
    const manifestPath = `${output}.manifest.json`;
    writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
    await checksumOutput(manifestPath);
    return manifest;
  }
}

/** Merges an unpacked package tree into the root (cp -a keeps symlinks and modes). */
function copyTree(from: string, to: string): void {
  const r = spawnSync('cp', ['-a', '--no-preserve=ownership', `${from}/.`, `${to}/`], { stdio: 'ignore' }).status ?? 1;
  if (r !== 0) throw new OspError('IMAGE_BUILD_FAILED', `copying ${from} into the image failed (exit ${r})`);
  rmSync(join(to, '.osp-image-complete'), { force: true });
}
