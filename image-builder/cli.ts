import { Command, CommanderError } from 'commander';
import { createLogger } from '../common/logging.js';
import { isOspError } from '../common/errors.js';
import { PHASES } from './elements.js';
import { parseBreakpoint } from './phases.js';
import { RAMDISK_COMPRESSIONS, type RamdiskCompression } from './ramdisk.js';
import { ImageBuilder, IMAGE_TYPES, type ImageType } from './builder.js';

function parseSize(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n <= 0) throw new Error(`--size: '${value}' is not valid, expected a positive number of GiB`);
  return n;
}

function parseType(value: string): ImageType {
  if (!(IMAGE_TYPES as readonly string[]).includes(value)) throw new Error(`-t/--type: '${value}' is not valid, expected one of ${IMAGE_TYPES.join(', ')}`);
  return value as ImageType;
}

/** osp-image entry point; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const logger = createLogger({ name: 'osp-image' });
  const builder = (): ImageBuilder => new ImageBuilder({ logger, elementsPath: process.env.ELEMENTS_PATH, streamOutput: true });
  const program = new Command('osp-image')
    .description('Builds osp ramdisks and whole-disk images from diskimage-builder-style elements')
    .exitOverride();

  program.command('build')
    .description('build an image from ELEMENTs (searched on ELEMENTS_PATH, then the built-ins)')
    .requiredOption('-o, --output <OUT>', 'output path prefix (OUT.kernel + OUT.initramfs, or OUT.raw / OUT.qcow2)')
    .option('-t, --type <type>', `image type: ${IMAGE_TYPES.join('|')}`, parseType, 'qcow2' as ImageType)
    .option('-p, --packages <list>', 'extra Debian packages, comma-separated', (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean), [] as string[])
    .option('--size <GiB>', 'disk size for raw/qcow2', parseSize)
    .option('--compression <alg>', `ramdisk initramfs compression: ${RAMDISK_COMPRESSIONS.join('|')}`, 'xz')
    .option('--break <when>', `drop to a shell: before-PHASE or after-PHASE (${PHASES.join(', ')}); interactive runs only`)
    .argument('<ELEMENT...>')
    .action(async (elements: string[], o: { output: string; type: ImageType; compression: string; packages: string[]; size?: number; break?: string }) => {
      const manifest = await builder().build({
        output: o.output, type: o.type, elements, packages: o.packages, sizeGiB: o.size, ramdiskCompression: o.compression as RamdiskCompression,
        breakpoint: o.break ? parseBreakpoint(o.break) : undefined,
        arguments: argv.slice(2),
      });
      process.stdout.write(JSON.stringify(manifest, null, 2) + '\n');
    });

  program.command('list-elements')
    .description('list the elements visible on ELEMENTS_PATH and the built-ins')
    .action(() => {
      const b = builder();
      for (const name of b.listElements()) process.stdout.write(`${name}\n`);
    });

  program.command('show')
    .description("show an element's folder, dependencies, provides, packages and phase scripts")
    .argument('<ELEMENT>')
    .action((name: string) => {
      const { element, resolved } = builder().show(name);
      const phases = Object.fromEntries([...element.phases].map(([p, s]) => [p, s.map((x) => x.name)]));
      process.stdout.write(JSON.stringify({
        name: element.name, dir: element.dir, deps: element.deps, provides: element.provides,
        resolvedDeps: resolved, packages: element.packages, environment: element.environmentFiles,
        phases, binaryDeps: element.binaryDeps, kernelModules: element.kernelModules,
      }, null, 2) + '\n');
    });

  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    const msg = isOspError(e) ? `${e.code}: ${e.message}` : (e as Error).message;
    process.stderr.write(`osp-image: ${msg}\n`);
    return 1;
  }
}
