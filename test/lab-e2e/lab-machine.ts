/**
 * One lab machine: a QEMU guest (TCG, BIOS or UEFI firmware, virtio NIC with
 * QEMU's iPXE ROM on a tap in the lab namespace, sparse virtio disks with
 * serial numbers) behind its own OpenIPMI
 * ipmi_sim BMC. The BMC's chassis_control program is a shell script that
 * really starts QEMU on "power on" and kills it on "power off", so ospd's
 * ipmi driver (ipmitool lanplus) drives the machine exactly as it would a
 * server. The same script powers on machines that have no BMC (discovery).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from '../pxe/netns.js';
import { udpPortBound } from '../bmc/ipmi-sim.js';
import { waitFor } from '../harness/wait.js';

/** OVMF as one flash image: no variable store, so the boot order comes from QEMU's bootindex alone on every boot. */
export const OVMF = ['/usr/share/ovmf/OVMF.fd', '/usr/share/qemu/OVMF.fd'].find((p) => existsSync(p));

export interface LabDisk {
  sizeBytes: number;
  /** What the guest reads as the disk's serial (/sys/block/vdX/serial), i.e. what root device hints match. */
  serial: string;
}

export interface LabMachineOptions {
  name: string;
  /** Lab namespace the BMC and the guest run in. */
  ns: string;
  tap: string;
  mac: string;
  cpus: number;
  memoryMb: number;
  /** Sparse raw files disk0.raw, disk1.raw…, in this order on the PCI bus (vda, vdb…). */
  disks: LabDisk[];
  /** Default bios (SeaBIOS); uefi needs OVMF installed. */
  firmware?: 'bios' | 'uefi';
  /** Working directory: disk images, serial log, QEMU pid file, BMC config. */
  dir: string;
}

export interface BmcOptions {
  address: string;
  port: number;
  username: string;
  password: string;
}

export class LabMachine {
  readonly dir: string;
  private bmcProc?: ChildProcess;

  constructor(readonly opts: LabMachineOptions) {
    this.dir = join(opts.dir, opts.name);
  }

  get serialLog(): string {
    return join(this.dir, 'serial.log');
  }

  /** The host file behind disk `index`; read it only while the machine is off. */
  diskPath(index: number): string {
    return join(this.dir, `disk${index}.raw`);
  }

  /** Writes the disks and the power script; with `bmc`, starts ipmi_sim in the namespace. */
  async start(bmc?: BmcOptions): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    if (this.opts.firmware === 'uefi' && !OVMF) throw new Error(`${this.opts.name}: UEFI asked for but no OVMF.fd is installed (Debian package ovmf)`);
    // Sparse: the guest sees the full size, the host stores nothing until written.
    for (const [i, d] of this.opts.disks.entries()) sh('truncate', ['-s', String(d.sizeBytes), this.diskPath(i)]);
    writeFileSync(this.powerScript, this.script());
    chmodSync(this.powerScript, 0o700);
    if (!bmc) return;
    writeFileSync(join(this.dir, 'lan.conf'), `name "${this.opts.name}"
set_working_mc 0x20
  startlan 1
    addr ${bmc.address} ${bmc.port}
    priv_limit admin
    allowed_auths_callback md5 straight
    allowed_auths_user md5 straight
    allowed_auths_operator md5 straight
    allowed_auths_admin md5 straight
    guid ${this.opts.mac.replace(/:/g, '').padEnd(32, 'a')}
  endlan
  chassis_control "${this.powerScript}"
  user 2 true "${bmc.username}" "${bmc.password}" admin 10 md5 straight
`, { mode: 0o600 });
    writeFileSync(join(this.dir, 'emu.cmds'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n');
    this.bmcProc = spawn('ip', ['netns', 'exec', this.opts.ns, 'ipmi_sim', '-c', join(this.dir, 'lan.conf'), '-f', join(this.dir, 'emu.cmds'),
      '-s', join(this.dir, 'bmc-state'), '-n'], { stdio: 'ignore' });
    const proc = this.bmcProc;
    await waitFor(`ipmi_sim for ${this.opts.name} listening on udp ${bmc.port}`, () => {
      if (proc.exitCode !== null) throw new Error(`ipmi_sim for ${this.opts.name} exited with ${proc.exitCode}`);
      return udpPortBound(sh('ip', ['netns', 'exec', this.opts.ns, 'cat', '/proc/net/udp']), bmc.port);
    }, { timeoutMs: 10_000, intervalMs: 50 });
  }

  /** Power on without a BMC (a machine nobody registered, switched on by hand). */
  powerOn(): void {
    sh('ip', ['netns', 'exec', this.opts.ns, this.powerScript, 'set', 'power', '1'], { timeoutMs: 30_000 });
  }

  get running(): boolean {
    const pid = this.pid();
    if (!pid) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Every chassis_control call the BMC made, oldest first. */
  calls(): string[] {
    const f = join(this.dir, 'calls.log');
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [];
  }

  serial(): string {
    // eslint-disable-next-line no-control-regex
    return existsSync(this.serialLog) ? readFileSync(this.serialLog, 'latin1').replace(/\x1b\[[0-9;?=]*[A-Za-z]/g, '') : '';
  }

  /** The disk files go (sparse, but large on paper); logs stay for diagnosis. */
  removeDisks(): void {
    for (const i of this.opts.disks.keys()) rmSync(this.diskPath(i), { force: true });
  }

  /** Kills the guest (if the BMC left it running) and the BMC. */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    const b = this.bmcProc;
    if (b && b.exitCode === null && b.signalCode === null) {
      const exited = new Promise((r) => b.once('exit', r));
      b.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      if (b.exitCode === null && b.signalCode === null) b.kill('SIGKILL');
    }
  }

  private get powerScript(): string {
    return join(this.dir, 'chassis-control.sh');
  }

  private pid(): number | undefined {
    const f = join(this.dir, 'qemu.pid');
    const n = existsSync(f) ? Number(readFileSync(f, 'utf8').trim()) : NaN;
    return Number.isInteger(n) && n > 0 ? n : undefined;
  }

  /**
   * ipmi_sim runs chassis_control as `PROG set NAME VALUE...` or `PROG get NAME...`
   * and reads `NAME:VALUE` lines back. QEMU daemonizes so the BMC is not held up;
   * -no-reboot turns a guest reboot or poweroff into QEMU exiting, i.e. power off.
   * The boot order is bootindex on each device, not -boot order=: OVMF reads only
   * the former, SeaBIOS both. Disks keep their bus order; a disk that holds no
   * boot loader is skipped by either firmware, as a server's would be.
   */
  private script(): string {
    const o = this.opts;
    const d = this.dir;
    const disks = o.disks.flatMap((disk, i) => ['-drive', `file=${this.diskPath(i)},format=raw,if=none,id=d${i}`,
      '-device', `virtio-blk-pci,drive=d${i},serial=${disk.serial},bootindex=$((db + ${i}))`]);
    const qemu = ['qemu-system-x86_64', '-name', o.name, '-accel', 'tcg', '-m', String(o.memoryMb), '-smp', String(o.cpus),
      ...(o.firmware === 'uefi' ? ['-bios', OVMF!] : []),
      '-nodefaults', '-display', 'none', '-no-reboot',
      '-chardev', `file,id=s0,path=${d}/serial.log,append=on`, '-serial', 'chardev:s0',
      '-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${o.mac},bootindex=$nb`,
      ...disks,
      '-monitor', `unix:${d}/monitor.sock,server=on,wait=off`,
      '-daemonize', '-pidfile', `${d}/qemu.pid`].join(' ');
    return `#!/bin/sh
d='${d}'
echo "$*" >> "$d/calls.log"
running() { [ -f "$d/qemu.pid" ] && kill -0 "$(cat "$d/qemu.pid")" 2>/dev/null; }
off() {
  running || return 0
  kill "$(cat "$d/qemu.pid")" 2>/dev/null
  i=0; while running && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  running && kill -9 "$(cat "$d/qemu.pid")" 2>/dev/null
  return 0
}
on() {
  running && return 0
  boot=$(cat "$d/st.boot" 2>/dev/null || echo none)
  # ipmitool 'chassis bootdev pxe' arrives as boot=pxe; anything else boots the disks first, the network last.
  case "$boot" in pxe) nb=0; db=1 ;; *) nb=${o.disks.length}; db=0 ;; esac
  echo "power on: boot $boot (net bootindex $nb)" >> "$d/calls.log"
  ${qemu} >> "$d/qemu.log" 2>&1
}
op=$1; shift
if [ "$op" = set ]; then
  while [ $# -ge 2 ]; do
    case "$1:$2" in
      power:1) on ;;
      power:0|shutdown:1) off ;;
      reset:1) off; on ;;
      *) echo "$2" > "$d/st.$1" ;;
    esac
    shift 2
  done
  exit 0
fi
for p in "$@"; do
  case "$p" in
    power) if running; then echo power:1; else echo power:0; fi ;;
    *) echo "$p:$(cat "$d/st.$p" 2>/dev/null || echo 0)" ;;
  esac
done
`;
  }
}
