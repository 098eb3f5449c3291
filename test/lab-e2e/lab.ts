/**
 * What every lab e2e file shares: a run directory under .tmp/lab-e2e (serial
 * consoles, ospd's data dir and log stay there for diagnosis), the ramdisk in
 * ospd's HTTP root (built by bin/osp-image, or OSP_LAB_RAMDISK), the private
 * namespace with its machines, ospd running inside it, and ospctl helpers that
 * append every console's tail and ospd's log to a failure.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { OspdProcess, REPO, runProgram, type RunResult } from '../harness/ospd.js';
import { LabNet } from './lab-net.js';
import { LabMachine, type LabMachineOptions } from './lab-machine.js';

export const GIB = 1024 ** 3;
export const BMC_USER = 'osp-lab';
// Travels only in the node file (0600) and ipmi_sim's config, never on a command line.
export const BMC_PASSWORD = 'Lab-Bmc-Secret-8';
const RUNS = join(REPO, '.tmp', 'lab-e2e');

export interface NodeJson { name: string; uuid: string; provision_state: string; power_state: string; last_error: string; properties: Record<string, unknown>; capabilities: Record<string, string>; ports?: string[] }
export interface Inventory { cpu?: { count?: number }; disks?: { name: string; size: number; serial?: string | null }[]; interfaces?: { mac_address: string }[] }

export class Lab {
  readonly net = new LabNet();
  readonly machines: LabMachine[] = [];
  readonly run: string;
  readonly dataDir: string;
  readonly httpRoot: string;
  ospd?: OspdProcess;

  /** `tag` names this file's runs: only its own older runs are removed, so lab files may run side by side. */
  constructor(private readonly tag: string) {
    this.run = join(RUNS, `${tag}-${process.pid}-${Date.now()}`);
    this.dataDir = join(this.run, 'ospd-data');
    this.httpRoot = join(this.run, 'http');
  }

  /** Run directory, the ramdisk in the HTTP root, the namespace. */
  async prepare(): Promise<void> {
    for (const old of existsSync(RUNS) ? readdirSync(RUNS).filter((f) => new RegExp(`^${this.tag}-\\d+-\\d+$`).test(f)) : []) rmSync(join(RUNS, old), { recursive: true, force: true });
    mkdirSync(this.httpRoot, { recursive: true });
    const agent = join(REPO, 'dist', 'osp-agent');
    if (!existsSync(agent)) throw new Error(`${agent} is missing: run 'npm run build:agent' first (the ramdisk carries the real agent)`);
    const prebuilt = process.env.OSP_LAB_RAMDISK;
    if (prebuilt) {
      // Iterating on these tests only: a ramdisk built earlier by osp-image (PREFIX.kernel, PREFIX.initramfs).
      for (const ext of ['kernel', 'initramfs']) copyFileSync(`${prebuilt}.${ext}`, join(this.httpRoot, `ramdisk.${ext}`));
    } else {
      // What an operator does: build the ramdisk straight into ospd's HTTP root.
      const build = await runProgram(process.execPath, [join(REPO, 'bin', 'osp-image'), 'build', '-t', 'ramdisk', '-o', join(this.httpRoot, 'ramdisk'), 'ramdisk', 'osp-agent'], { timeoutMs: 300_000 });
      if (build.code !== 0) throw new Error(`osp-image build failed (${build.code}): ${build.stderr.slice(-2000)}`);
    }
    this.net.start();
  }

  /** A machine on the next tap; with `bmcHost`, behind its own ipmi_sim at <prefix>.<bmcHost>:623. */
  async addMachine(o: Omit<LabMachineOptions, 'ns' | 'tap' | 'dir'>, bmcHost?: number): Promise<LabMachine> {
    const m = new LabMachine({ ...o, ns: this.net.ns, tap: this.net.addTap(this.machines.length), dir: this.run });
    this.machines.push(m);
    await m.start(bmcHost ? { address: this.net.addAddress(bmcHost), port: 623, username: BMC_USER, password: BMC_PASSWORD } : undefined);
    return m;
  }

  /** ospd's flags for serving this lab; `waitTimeoutMs` bounds every ramdisk wait (inspect, clean, deploy call-back). */
  ospdArgs(waitTimeoutMs: number, extra: string[] = []): string[] {
    const net = this.net;
    return [
      '--grpc-listen', '0.0.0.0:0', '--advertise-address', net.serverIp,
      '--dhcp-interface', net.bridge, '--dhcp-listen', '0.0.0.0:67', '--dhcp-range', `${net.prefix}.100,${net.prefix}.150`,
      '--http-listen', '0.0.0.0:8080', '--tftp-listen', '0.0.0.0:69', '--http-root', this.httpRoot,
      '--kernel-args', 'console=ttyS0',
      '--ipmi-cipher-suites', '3', '--bmc-min-interval-ms', '200', '--power-wait-timeout-ms', '30000',
      '--inspect-wait-timeout-ms', String(waitTimeoutMs),
      ...extra,
    ];
  }

  /** (Re)starts ospd in the namespace with these flags, on the same data dir. */
  async startOspd(args: string[]): Promise<OspdProcess> {
    await this.ospd?.stop();
    this.ospd = new OspdProcess(this.dataDir, args, this.net.wrap);
    await this.ospd.start();
    return this.ospd;
  }

  ctl(args: string[], timeoutMs = 60_000): Promise<RunResult> {
    if (!this.ospd) throw new Error('ospd is not started');
    return this.ospd.ctl(args, { timeoutMs });
  }

  async ok(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.ctl(args, timeoutMs);
    if (r.code !== 0) throw new Error(`ospctl ${args.join(' ')} → ${r.code}: ${r.stderr}${this.diagnosis()}`);
    return r.stdout;
  }

  async json<T = Record<string, unknown>>(args: string[], timeoutMs?: number): Promise<T> {
    return JSON.parse(await this.ok([...args, '-f', 'json'], timeoutMs)) as T;
  }

  /** `ospctl node inventory -f json` → the hardware facts (IPA-style, possibly wrapped in `inventory`). */
  async inventoryOf(node: string): Promise<Inventory | undefined> {
    const r = await this.ctl(['node', 'inventory', node, '-f', 'json']);
    if (r.code !== 0) return undefined;
    const facts = (JSON.parse(r.stdout) as { facts?: Inventory & { inventory?: Inventory } }).facts;
    const doc = facts?.inventory ?? facts;
    return doc && Object.keys(doc).length ? doc : undefined;
  }

  /** The tail of every console and ospd's log, appended to failures. */
  diagnosis = (): string => {
    const tails = this.machines.map((m) => `--- ${m.opts.name} serial (${m.serialLog}) ---\n${m.serial().slice(-1500)}`);
    return `\n${tails.join('\n')}\n--- ospd log (${this.ospd?.logFile}) ---\n${this.ospd?.log().slice(-3000) ?? ''}`;
  };

  /** Everything stopped and the namespace gone; logs stay, disks and the HTTP root go. */
  async destroy(): Promise<void> {
    await this.ospd?.stop();
    for (const m of this.machines) await m.stop();
    this.net.destroy();
    for (const m of this.machines) m.removeDisks();
    rmSync(this.httpRoot, { recursive: true, force: true });
  }
}
