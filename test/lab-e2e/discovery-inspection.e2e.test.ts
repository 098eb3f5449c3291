/**
 * Issue 8 end to end, every part real: ospd (bin/ospd) runs in a private
 * namespace serving DHCP/TFTP/HTTP on a bridge; the ramdisk is built by
 * bin/osp-image; three QEMU machines (TCG, virtio NIC with QEMU's iPXE ROM,
 * sparse virtio disks of different sizes) sit on taps in that bridge; two of
 * them have their own OpenIPMI ipmi_sim BMC whose chassis control starts and
 * stops the QEMU process, driven by ospd's ipmi driver (ipmitool lanplus,
 * cipher suite 3). ospctl runs in the namespace too.
 * Phases: import → manage → inspect (inventory, derived properties, a rule
 * sets profile:compute by disk size, powered off); restart with discovery, an
 * unregistered machine boots and enrols itself; a machine whose cable is
 * pulled times out with "no DHCP request from <mac>".
 * Serial consoles and ospd's log stay in .tmp/lab-e2e/run-* for diagnosis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OspdProcess, REPO, runProgram, type RunResult } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';
import { LabNet } from './lab-net.js';
import { LabMachine } from './lab-machine.js';

const GIB = 1024 ** 3;
const BMC_USER = 'osp-lab';
// Travels only in the node file (0600) and ipmi_sim's config, never on a command line.
const BMC_PASSWORD = 'Lab-Bmc-Secret-8';
const RUNS = join(REPO, '.tmp', 'lab-e2e');
const RUN = join(RUNS, `run-${process.pid}-${Date.now()}`);
/** One machine's whole inspection under TCG on a shared 2-core box: iPXE (~13 s IPv6 wait), 45 MB over HTTP, kernel, agent. */
const INSPECT_BUDGET_MS = 360_000;

const lab = new LabNet();
const spec = [
  { name: 'lab-small', mac: '52:54:00:8a:00:01', cpus: 1, diskSizeBytes: 5 * GIB, bmcHost: 11 },
  { name: 'lab-big', mac: '52:54:00:8a:00:02', cpus: 2, diskSizeBytes: 9 * GIB, bmcHost: 12 },
  { name: 'lab-stranger', mac: '52:54:00:8a:00:03', cpus: 1, diskSizeBytes: 6 * GIB, bmcHost: 0 },
] as const;
const machines: LabMachine[] = [];
const small = (): LabMachine => machines[0];
const stranger = (): LabMachine => machines[2];
let ospd: OspdProcess;
let dataDir: string;
let httpRoot: string;

function ospdArgs(extra: string[] = []): string[] {
  return [
    '--grpc-listen', '0.0.0.0:0', '--advertise-address', lab.serverIp,
    '--dhcp-interface', lab.bridge, '--dhcp-listen', '0.0.0.0:67', '--dhcp-range', `${lab.prefix}.100,${lab.prefix}.150`,
    '--http-listen', '0.0.0.0:8080', '--tftp-listen', '0.0.0.0:69', '--http-root', httpRoot,
    '--kernel-args', 'console=ttyS0',
    '--ipmi-cipher-suites', '3', '--bmc-min-interval-ms', '200', '--power-wait-timeout-ms', '30000',
    '--inspect-wait-timeout-ms', String(INSPECT_BUDGET_MS),
    ...extra,
  ];
}

async function ctl(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return ospd.ctl(args, { timeoutMs });
}
async function ok(args: string[], timeoutMs?: number): Promise<string> {
  const r = await ctl(args, timeoutMs);
  if (r.code !== 0) throw new Error(`ospctl ${args.join(' ')} → ${r.code}: ${r.stderr}${diagnosis()}`);
  return r.stdout;
}
async function json<T = Record<string, unknown>>(args: string[], timeoutMs?: number): Promise<T> {
  return JSON.parse(await ok([...args, '-f', 'json'], timeoutMs)) as T;
}

/** The tail of every console and ospd's log, appended to failures. */
function diagnosis(): string {
  const tails = machines.map((m) => `--- ${m.opts.name} serial (${m.serialLog}) ---\n${m.serial().slice(-1500)}`);
  return `\n${tails.join('\n')}\n--- ospd log (${ospd?.logFile}) ---\n${ospd?.log().slice(-3000) ?? ''}`;
}

interface NodeJson { name: string; uuid: string; provision_state: string; power_state: string; last_error: string; properties: Record<string, unknown>; capabilities: Record<string, string>; ports?: string[] }
interface Inventory { cpu?: { count?: number }; disks?: { name: string; size: number }[]; interfaces?: { mac_address: string }[] }

/** `ospctl node inventory -f json` → the hardware facts (IPA-style, possibly wrapped in `inventory`). */
async function inventoryOf(node: string): Promise<Inventory | undefined> {
  const r = await ctl(['node', 'inventory', node, '-f', 'json']);
  if (r.code !== 0) return undefined;
  const facts = (JSON.parse(r.stdout) as { facts?: Inventory & { inventory?: Inventory } }).facts;
  const doc = facts?.inventory ?? facts;
  return doc && Object.keys(doc).length ? doc : undefined;
}

beforeAll(async () => {
  for (const old of existsSync(RUNS) ? readdirSync(RUNS).filter((f) => f.startsWith('run-')) : []) rmSync(join(RUNS, old), { recursive: true, force: true });
  mkdirSync(RUN, { recursive: true });
  const agent = join(REPO, 'dist', 'osp-agent');
  if (!existsSync(agent)) throw new Error(`${agent} is missing: run 'npm run build:agent' first (the ramdisk carries the real agent)`);
  dataDir = join(RUN, 'ospd-data');
  httpRoot = join(RUN, 'http');
  mkdirSync(httpRoot, { recursive: true });
  const prebuilt = process.env.OSP_LAB_RAMDISK;
  if (prebuilt) {
    // Iterating on this test only: a ramdisk built earlier by osp-image (PREFIX.kernel, PREFIX.initramfs).
    for (const ext of ['kernel', 'initramfs']) copyFileSync(`${prebuilt}.${ext}`, join(httpRoot, `ramdisk.${ext}`));
  } else {
    // What an operator does: build the ramdisk straight into ospd's HTTP root.
    const build = await runProgram(process.execPath, [join(REPO, 'bin', 'osp-image'), 'build', '-t', 'ramdisk', '-o', join(httpRoot, 'ramdisk'), 'ramdisk', 'osp-agent'], { timeoutMs: 300_000 });
    if (build.code !== 0) throw new Error(`osp-image build failed (${build.code}): ${build.stderr.slice(-2000)}`);
  }

  lab.start();
  for (const [i, s] of spec.entries()) {
    const m = new LabMachine({ name: s.name, ns: lab.ns, tap: lab.addTap(i), mac: s.mac, cpus: s.cpus, memoryMb: 1024, diskSizeBytes: s.diskSizeBytes, dir: RUN });
    machines.push(m);
    await m.start(s.bmcHost ? { address: lab.addAddress(s.bmcHost), port: 623, username: BMC_USER, password: BMC_PASSWORD } : undefined);
  }
  ospd = new OspdProcess(dataDir, ospdArgs(), lab.wrap);
  await ospd.start();
}, 420_000);

afterAll(async () => {
  await ospd?.stop();
  for (const m of machines) await m.stop();
  lab.destroy();
  // Logs stay for diagnosis; the disk images (sparse, but large on paper) go.
  for (const m of machines) rmSync(join(m.dir, 'disk.raw'), { force: true });
  rmSync(httpRoot, { recursive: true, force: true });
}, 60_000);

describe('lab: discovery and inspection of QEMU machines behind ipmi_sim BMCs, through ospd and ospctl', () => {
  it('imports both machines and manage verifies their BMCs', async () => {
    const file = join(RUN, 'nodes.json');
    writeFileSync(file, JSON.stringify({
      nodes: spec.filter((s) => s.bmcHost).map((s) => ({
        name: s.name, pm_type: 'ipmi', pm_addr: `${lab.prefix}.${s.bmcHost}`, pm_port: '623', pm_user: BMC_USER, pm_password: BMC_PASSWORD, mac: [s.mac],
      })),
    }), { mode: 0o600 });
    await ok(['node', 'import', file]);
    const states = await Promise.all(['lab-small', 'lab-big'].map((n) => json<NodeJson>(['node', 'manage', n, '--wait'], 90_000)));
    expect(states.map((n) => [n.provision_state, n.last_error])).toEqual([['manageable', ''], ['manageable', '']]);
  }, 120_000);

  it('inspects both in parallel: real disk size, MAC and CPU count in the inventory, a rule sets profile:compute by disk size, powered off', async () => {
    const rules = join(RUN, 'rules.json');
    writeFileSync(rules, JSON.stringify([{
      description: 'a root disk of 6 GiB or more makes a compute node',
      conditions: [{ op: 'ge', field: 'local_gb', value: 6 }],
      actions: [{ action: 'set-capability', name: 'profile', value: 'compute' }],
    }]));
    await ok(['rule', 'import', rules]);
    const results = await Promise.all(['lab-small', 'lab-big'].map((n) => ctl(['node', 'inspect', n, '--wait', '-f', 'json'], INSPECT_BUDGET_MS + 60_000)));
    for (const r of results) expect(r.code, `${r.stderr}${diagnosis()}`).toBe(0);

    for (const [i, s] of spec.slice(0, 2).entries()) {
      const n = await json<NodeJson>(['node', 'show', s.name]);
      expect(n.provision_state).toBe('manageable');
      expect(n.last_error).toBe('');
      expect(n.properties.cpus).toBe(s.cpus);
      // inspector's convention: whole GiB of the root disk, less 1 GiB for partitioning.
      expect(n.properties.local_gb).toBe(s.diskSizeBytes / GIB - 1);
      const doc = await inventoryOf(s.name);
      expect(doc, `inventory of ${s.name}`).toBeDefined();
      expect(doc?.cpu?.count).toBe(s.cpus);
      expect(doc?.disks?.map((d) => d.size)).toContain(s.diskSizeBytes);
      expect(doc?.interfaces?.map((x) => x.mac_address.toLowerCase())).toContain(s.mac);
      // The BMC was asked to PXE boot and power on, then off: QEMU is gone.
      const m = machines[i];
      expect(m.calls()).toContain('set boot pxe');
      expect(m.calls().filter((c) => c.startsWith('power on'))).toHaveLength(1);
      await waitFor(`${s.name} powered off`, async () => (!m.running && (await json<NodeJson>(['node', 'show', s.name])).power_state === 'off' ? true : undefined), { timeoutMs: 60_000, intervalMs: 2000, detail: diagnosis });
    }
    const profiles = await json<NodeJson[]>(['node', 'list', '--profile', 'compute']);
    expect(profiles.map((n) => n.name)).toEqual(['lab-big']);
    expect((await json<NodeJson>(['node', 'show', 'lab-small'])).capabilities.profile).toBeUndefined();
  }, INSPECT_BUDGET_MS + 120_000);

  it('with discovery on, a machine nobody registered boots the ramdisk and enrols itself', async () => {
    await ospd.stop();
    ospd = new OspdProcess(dataDir, ospdArgs(['--discovery']), lab.wrap);
    await ospd.start();
    stranger().powerOn();
    const found = await waitFor('the stranger enrols', async () => {
      const nodes = await json<NodeJson[]>(['node', 'list', '--long']);
      return nodes.find((n) => !['lab-small', 'lab-big'].includes(n.name));
    }, { timeoutMs: INSPECT_BUDGET_MS, intervalMs: 3000, detail: diagnosis });
    expect(found.provision_state).toBe('enroll');
    const doc = await waitFor('the stranger\'s inventory', () => inventoryOf(found.uuid), { timeoutMs: 60_000, intervalMs: 2000, detail: diagnosis });
    expect(doc?.interfaces?.map((x) => x.mac_address.toLowerCase())).toContain(spec[2].mac);
    expect(doc?.disks?.map((d) => d.size)).toContain(spec[2].diskSizeBytes);
    const history = await json<{ type: string }[]>(['node', 'history', found.uuid]);
    expect(history.map((e) => e.type)).toContain('discovery');
    // Nobody holds its BMC: the agent's power_off command is what switches it off.
    await waitFor('the stranger powers itself off', async () => (stranger().running ? undefined : true), { timeoutMs: 60_000, intervalMs: 2000, detail: diagnosis });
    expect(stranger().serial()).toMatch(/"kind":"power_off","msg":"command received"/);
  }, INSPECT_BUDGET_MS + 60_000);

  it('a machine whose cable is pulled times out, explained as "no DHCP request from <mac>"', async () => {
    lab.unplug(small().opts.tap);
    await ok(['node', 'set', 'lab-small', '--capability', 'inspect_wait_timeout_ms=30000']);
    const r = await ctl(['node', 'inspect', 'lab-small', '--wait', '-f', 'json'], 120_000);
    expect(r.code).not.toBe(0);
    const n = await json<NodeJson>(['node', 'show', 'lab-small']);
    expect(n.provision_state).toBe('inspect failed');
    expect(n.last_error).toMatch(new RegExp(`no DHCP request from ${spec[0].mac}`));
    // The BMC did power it on: the machine was there, only its NIC was cut off.
    expect(small().calls().filter((c) => c.startsWith('power on')).length).toBeGreaterThanOrEqual(2);
  }, 180_000);
});
