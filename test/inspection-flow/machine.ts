import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../harness/ospd.js';

export const AGENT = path.join(REPO, 'dist', 'osp-agent');
export const MIB = 1024 * 1024;
export const DISK_BYTES = 6 * MIB;

function write(root: string, p: string, text: string | Buffer): void {
  mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
  writeFileSync(path.join(root, p), text);
}

/**
 * A machine as the ramdisk agent sees it through --root: kernel command
 * line, NICs, CPUs, memory, DMI, and one disk image file (dev/vda) whose
 * first and last MiB hold a fake partition table and signature.
 */
export class FakeMachine {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'osp-ramdisk-root-'));
  proc?: ChildProcess;
  stderr = '';
  private exited?: Promise<number | null>;

  constructor(readonly opts: { macs: string[]; serial?: string; cpus?: number; diskBytes?: number }) {
    const r = this.root;
    const cpu = (n: number) => `processor\t: ${n}\nmodel name\t: QEMU Virtual CPU\ncpu MHz\t\t: 2000.000\nflags\t\t: fpu sse2\n`;
    write(r, 'proc/cpuinfo', Array.from({ length: opts.cpus ?? 2 }, (_, i) => cpu(i)).join('\n'));
    write(r, 'proc/meminfo', 'MemTotal:        4026532 kB\nMemFree: 100 kB\n');
    write(r, 'sys/devices/system/memory/block_size_bytes', '8000000\n');
    for (let i = 0; i < 32; i++) write(r, `sys/devices/system/memory/memory${i}/online`, '1\n');
    opts.macs.forEach((mac, i) => {
      write(r, `sys/class/net/eth${i}/address`, `${mac}\n`);
      write(r, `sys/class/net/eth${i}/device/vendor`, '0x1af4\n');
    });
    write(r, 'sys/class/net/lo/address', '00:00:00:00:00:00\n');
    write(r, 'sys/class/dmi/id/product_serial', `${opts.serial ?? ''}\n`);
    write(r, 'sys/class/dmi/id/product_name', 'KVM\n');
    write(r, 'proc/sys/kernel/hostname', 'ramdisk\n');
    const disk = Buffer.alloc(opts.diskBytes ?? DISK_BYTES, 0x5a);
    disk.write('EFI PART', 512, 'latin1');
    write(r, 'dev/vda', disk);
    // Not a disk name: must be left alone by the cleaner.
    write(r, 'dev/loop0', Buffer.alloc(MIB, 0x5a));
  }

  bootParams(server: string, caSha256: string): void {
    // iPXE names the NIC it booted from in BOOTIF; inspection makes that MAC a port.
    const bootif = `01-${this.opts.macs[this.opts.macs.length - 1].replace(/:/g, '-')}`;
    write(this.root, 'proc/cmdline', `BOOT_IMAGE=/ramdisk.kernel ip=dhcp BOOTIF=${bootif} osp.server=${server} osp.ca_sha256=${caSha256}\n`);
  }

  get poweredOff(): boolean {
    return existsSync(path.join(this.root, 'powered-off'));
  }

  disk(name = 'vda'): Buffer {
    return readFileSync(path.join(this.root, 'dev', name));
  }

  /** The real osp-agent binary in ramdisk mode; power_off touches a marker file instead of halting this host. */
  boot(): void {
    this.proc = spawn(AGENT, ['--root', this.root, 'ramdisk', '--poweroff-command', `touch ${path.join(this.root, 'powered-off')}`,
      '--reboot-command', `touch ${path.join(this.root, 'rebooted')}`, '--min-backoff-ms', '100', '--max-backoff-ms', '400'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.proc!.on('exit', (code) => resolve(code)));
  }

  /** Resolves with the exit code, or undefined if it is still running after timeoutMs. */
  async exit(timeoutMs: number): Promise<number | null | undefined> {
    if (!this.exited) return undefined;
    return Promise.race([this.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), timeoutMs))]);
  }

  async halt(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exit(5000);
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}
