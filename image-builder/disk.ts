import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/logging.js';
import { OspError } from '../common/errors.js';
import type { PhaseRunner } from './phases.js';
import { runCommand } from './run-command.js';

export interface DiskImageOptions {
  root: string;
  work: string;
  output: string;
  type: 'raw' | 'qcow2';
  sizeGiB: number;
  logger: Logger;
  /** Shared with the phase runner: block-device facts are added for finalise.d scripts. */
  env: Record<string, string>;
}

/**
 * Whole-disk output. Before block-device.d it lays out GPT (BIOS boot, EFI system
 * partition, ext4 root) on a loop device, copies the built root in and points the
 * runner at it, so finalise.d (the vm element: fstab, GRUB) runs in the real
 * filesystem; /boot/efi is then copied into the FAT ESP. stop() detaches everything it attached, whatever happened.
 */
export class DiskImageWriter {
  private loop?: string;
  private esp?: string;
  private readonly mounted: string[] = [];
  private readonly rawPath: string;
  private readonly mnt: string;

  constructor(private readonly opts: DiskImageOptions) {
    this.rawPath = opts.type === 'raw' ? `${opts.output}.raw` : join(opts.work, 'disk.raw');
    this.mnt = join(opts.work, 'mnt');
  }

  hooks(runner: PhaseRunner): { 'before:block-device.d': () => Promise<void> } {
    return { 'before:block-device.d': async () => { runner.setTargetRoot(await this.layout()); } };
  }

  private async must(argv: string[], what: string): Promise<string> {
    const r = await runCommand(argv);
    if (r.exitCode !== 0) {
      throw new OspError('IMAGE_BUILD_FAILED', `${what}: ${argv.join(' ')} exited with code ${r.exitCode}: ${r.stderr.trim()}`, { argv });
    }
    return r.stdout.trim();
  }

  private async layout(): Promise<string> {
    const o = this.opts;
    rmSync(this.rawPath, { force: true });
    await this.must(['truncate', '-s', `${o.sizeGiB}G`, this.rawPath], 'creating the disk file');
    // GPT: 1 MiB BIOS boot partition (GRUB core for legacy boot), 100 MiB ESP, then root.
    await this.must(['sgdisk', '-Z', '-n1:2048:+1M', '-t1:ef02', '-c1:bios', '-n2:0:+100M', '-t2:ef00', '-c2:esp',
      '-n3:0:0', '-t3:8304', '-c3:root', this.rawPath], 'partitioning');
    this.loop = await this.must(['losetup', '--show', '-f', '-P', this.rawPath], 'attaching the loop device');
    await this.ensurePartitionNodes(this.loop, 3);
    const esp = `${this.loop}p2`;
    const rootDev = `${this.loop}p3`;
    await this.must(['mkfs.vfat', '-F', '32', '-n', 'EFI', esp], 'making the ESP');
    await this.must(['mkfs.ext4', '-q', '-L', 'root', rootDev], 'making the root filesystem');
    mkdirSync(this.mnt, { recursive: true });
    await this.mount(rootDev, this.mnt);
    await this.must(['cp', '-a', `${o.root}/.`, `${this.mnt}/`], 'copying the root into the image');
    // The ESP is filled as a folder and copied into FAT with mtools at the end: the build
    // host's kernel need not have vfat (containers and microVMs often lack it).
    mkdirSync(join(this.mnt, 'boot/efi'), { recursive: true });
    this.esp = esp;
    Object.assign(o.env, {
      IMAGE_BLOCK_DEVICE: this.loop,
      DIB_ROOT_UUID: await this.must(['blkid', '-s', 'UUID', '-o', 'value', rootDev], 'reading the root UUID'),
      DIB_ESP_UUID: await this.must(['blkid', '-s', 'UUID', '-o', 'value', esp], 'reading the ESP UUID'),
    });
    return this.mnt;
  }

  /** Containers often have a static /dev: create the partition nodes the kernel announced in sysfs. */
  private async ensurePartitionNodes(loop: string, count: number): Promise<void> {
    const name = loop.replace('/dev/', '');
    // Some kernels/containers skip the partition scan losetup -P asks for; partx adds them.
    if (!existsSync(`/sys/block/${name}/${name}p1`)) await this.must(['partx', '-a', loop], 'adding loop partitions');
    for (let i = 1; i <= count; i++) {
      const node = `${loop}p${i}`;
      if (existsSync(node)) continue;
      const devFile = `/sys/block/${name}/${name}p${i}/dev`;
      if (!existsSync(devFile)) throw new OspError('IMAGE_BUILD_FAILED', `partition ${i} of ${loop} did not appear in ${devFile}`);
      const [major, minor] = readFileSync(devFile, 'utf8').trim().split(':');
      await this.must(['mknod', node, 'b', major, minor], 'creating a partition node');
    }
  }

  private async mount(dev: string, target: string): Promise<void> {
    await this.must(['mount', dev, target], `mounting ${dev}`);
    this.mounted.push(target);
  }

  /** Unmounts, detaches, converts; returns the output file. */
  async finish(): Promise<string> {
    const espDir = join(this.mnt, 'boot/efi');
    const entries = existsSync(espDir) ? readdirSync(espDir) : [];
    if (this.esp && entries.length > 0) {
      await this.must(['mcopy', '-i', this.esp, '-s', '-Q', '-o', ...entries.map((e) => join(espDir, e)), '::/'], 'copying the ESP contents');
      // Leave an empty mount point: fstab mounts the ESP over it at boot.
      for (const e of entries) rmSync(join(espDir, e), { recursive: true, force: true });
    }
    await runCommand(['sync']);
    await this.stop();
    if (this.opts.type === 'raw') return this.rawPath;
    const out = `${this.opts.output}.qcow2`;
    await this.must(['qemu-img', 'convert', '-O', 'qcow2', '-c', this.rawPath, out], 'converting to qcow2');
    rmSync(this.rawPath, { force: true });
    return out;
  }

  async stop(): Promise<void> {
    while (this.mounted.length > 0) {
      const t = this.mounted.pop()!;
      const r = await runCommand(['umount', t]);
      if (r.exitCode !== 0) await runCommand(['umount', '-l', t]);
    }
    if (this.loop) {
      const loop = this.loop;
      this.loop = undefined;
      for (let i = 1; i <= 3; i++) {
        // Nodes we created by hand would otherwise outlive the loop device.
        if (existsSync(`${loop}p${i}`)) rmSync(`${loop}p${i}`, { force: true });
      }
      const r = await runCommand(['losetup', '-d', loop]);
      if (r.exitCode !== 0) this.opts.logger.error({ loop, stderr: r.stderr }, 'losetup -d failed');
    }
  }
}
