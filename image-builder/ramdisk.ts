import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../common/logging.js';
import { OspError } from '../common/errors.js';
import type { DebCache } from './deb-cache.js';
import { runCommand } from './run-command.js';
import { copyIntoRoot, isElf, sharedLibraries } from './shared-libs.js';

export interface KernelInfo {
  version: string;
  vmlinuz: string;
  /** Requested modules that this kernel does not ship (e.g. mlx5 on a trimmed build). */
  absentModules: string[];
  installedModules: number;
}

export type RamdiskCompression = 'gzip' | 'xz' | 'zstd';
export const RAMDISK_COMPRESSIONS: readonly RamdiskCompression[] = ['xz', 'gzip', 'zstd'];

/**
 * Compressors the Debian kernel unpacks (CONFIG_RD_GZIP/XZ/ZSTD). xz needs CRC32 checks
 * and a small dictionary: the kernel's decoder knows no other check and preallocates.
 */
const COMPRESSORS: Record<RamdiskCompression, string> = {
  gzip: 'gzip -6',
  xz: 'xz --check=crc32 --lzma2=preset=6,dict=1MiB -T1',
  zstd: 'zstd -q -19 -T0',
};

const HOST_SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Module names compare with - and _ as the same character, as modprobe does. */
const modKey = (name: string): string => name.replace(/-/g, '_');

/**
 * Fills a staging root with what a Debian-kernel ramdisk needs without a debootstrap:
 * busybox-static, the kernel's modules for NICs and disks with depmod data, host tools
 * with their libraries, and finally packs it as newc cpio + gzip.
 */
export class RamdiskAssembler {
  constructor(private readonly root: string, private readonly debs: DebCache, private readonly logger: Logger) {}

  async installBusybox(): Promise<void> {
    const tree = await this.debs.extract('busybox-static');
    const bb = join(this.root, 'bin/busybox');
    mkdirSync(dirname(bb), { recursive: true });
    copyFileSync(join(tree, 'bin/busybox'), bb);
    const list = await runCommand([bb, '--list-full']);
    if (list.exitCode !== 0) throw new OspError('IMAGE_BUILD_FAILED', `busybox --list-full failed: ${list.stderr}`);
    for (const applet of list.stdout.split('\n').filter((l) => l.length > 0)) {
      const link = join(this.root, applet);
      if (existsSync(link)) continue;
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync('/bin/busybox', link);
    }
    for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'root', 'etc', 'var/log', 'mnt']) mkdirSync(join(this.root, d), { recursive: true });
  }

  /** Unpacks the kernel package (following the metapackage), copies modules plus their dependencies. */
  async installKernel(kernelPackage: string, modules: string[]): Promise<KernelInfo> {
    let pkg = kernelPackage;
    let tree = await this.debs.extract(pkg);
    if (!existsSync(join(tree, 'boot'))) {
      // linux-image-amd64 is a metapackage: its one dependency is the versioned kernel.
      const deps = await this.debs.depends(await this.debs.fetch(pkg));
      pkg = deps.find((d) => d.startsWith('linux-image-')) ?? '';
      if (!pkg) throw new OspError('IMAGE_TOOL_MISSING', `${kernelPackage} neither ships /boot nor depends on a linux-image package`);
      tree = await this.debs.extract(pkg);
    }
    const vmlinuzName = readdirSync(join(tree, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuzName) throw new OspError('IMAGE_TOOL_MISSING', `${pkg} has no /boot/vmlinuz-*`);
    const version = vmlinuzName.slice('vmlinuz-'.length);
    const srcMods = join(tree, 'lib/modules', version);
    if (!existsSync(join(srcMods, 'modules.dep'))) {
      const r = await runCommand(['depmod', '-b', tree, version]);
      if (r.exitCode !== 0) throw new OspError('IMAGE_BUILD_FAILED', `depmod on the unpacked kernel failed: ${r.stderr}`);
    }
    const deps = new Map<string, { path: string; deps: string[] }>();
    for (const line of readFileSync(join(srcMods, 'modules.dep'), 'utf8').split('\n')) {
      const [path, rest] = line.split(':');
      if (!path || rest === undefined) continue;
      const name = modKey(basename(path).replace(/\.ko(\.[a-z]+)?$/, ''));
      deps.set(name, { path, deps: rest.trim().split(/\s+/).filter((d) => d.length > 0) });
    }
    const builtin = new Set(readFileSync(join(srcMods, 'modules.builtin'), 'utf8').split('\n').map((p) => modKey(basename(p).replace(/\.ko$/, ''))));
    const wanted = new Set<string>();
    const absent: string[] = [];
    for (const m of modules) {
      const entry = deps.get(modKey(m));
      if (!entry) {
        if (!builtin.has(modKey(m))) absent.push(m);
        continue;
      }
      wanted.add(entry.path);
      for (const d of entry.deps) wanted.add(d);
    }
    const dstMods = join(this.root, 'lib/modules', version);
    for (const rel of wanted) {
      mkdirSync(dirname(join(dstMods, rel)), { recursive: true });
      copyFileSync(join(srcMods, rel), join(dstMods, rel));
    }
    for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
      if (existsSync(join(srcMods, f))) copyFileSync(join(srcMods, f), join(dstMods, f));
    }
    const r = await runCommand(['depmod', '-b', this.root, version]);
    if (r.exitCode !== 0) throw new OspError('IMAGE_BUILD_FAILED', `depmod in the ramdisk root failed: ${r.stderr}`);
    mkdirSync(join(this.root, 'etc/osp-ramdisk'), { recursive: true });
    writeFileSync(join(this.root, 'etc/osp-ramdisk/modules'), modules.filter((m) => !absent.includes(m)).join('\n') + '\n');
    if (absent.length > 0) this.logger.info({ absent }, 'kernel modules not shipped by this kernel, skipped');
    return { version, vmlinuz: join(tree, 'boot', vmlinuzName), absentModules: absent, installedModules: wanted.size };
  }

  /** Copies host tools by name (found on the host PATH) over any busybox applet of that name. */
  async installHostBinaries(names: string[]): Promise<void> {
    for (const name of names) {
      const host = HOST_SEARCH_PATH.map((d) => join(d, name)).find((p) => existsSync(p) && statSync(p).isFile());
      if (!host) {
        throw new OspError('IMAGE_TOOL_MISSING', `binary-deps: '${name}' is not installed on the build host (searched ${HOST_SEARCH_PATH.join(':')}); install its Debian package`, { binary: name });
      }
      const dest = join(this.root, 'usr/bin', name);
      mkdirSync(dirname(dest), { recursive: true });
      if (existsSync(dest) || isSymlink(dest)) unlinkSync(dest);
      copyFileSync(host, dest);
    }
  }

  /** Every dynamic ELF in the root gets its libraries and loader, as ldd resolves them. */
  async resolveLibraries(): Promise<number> {
    const libs = new Set<string>();
    for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/local/bin', 'usr/local/sbin']) {
      const abs = join(this.root, dir);
      if (!existsSync(abs)) continue;
      for (const f of readdirSync(abs)) {
        const p = join(abs, f);
        if (isSymlink(p) || !statSync(p).isFile() || !isElf(p)) continue;
        for (const l of await sharedLibraries(p)) libs.add(l);
      }
    }
    copyIntoRoot(this.root, [...libs]);
    return libs.size;
  }

  /** newc cpio (what the kernel's initramfs unpacker reads), owned by root, then compressed. */
  async pack(outFile: string, compression: RamdiskCompression): Promise<void> {
    mkdirSync(join(this.root, 'dev'), { recursive: true });
    // The kernel opens /dev/console before /init runs; without it early output is lost.
    if (!existsSync(join(this.root, 'dev/console'))) await runCommand(['mknod', '-m', '600', join(this.root, 'dev/console'), 'c', '5', '1']);
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const r = await runCommand(['bash', '-o', 'pipefail', '-c',
      `cd ${q(this.root)} && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | ${COMPRESSORS[compression]} > ${q(outFile)}`]);
    if (r.exitCode !== 0) throw new OspError('IMAGE_BUILD_FAILED', `packing the initramfs failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  }
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
