/**
 * Issue 11 end to end on a QEMU machine (TCG, BIOS) with two disks behind an
 * ipmi_sim BMC, every part real: ospd in the lab namespace, the ramdisk built
 * by bin/osp-image, ospctl. The machine is inspected, provided (cleaned through
 * the ramdisk), given a root device hint naming the second disk's serial (the
 * first is the one Ironic's default, the smallest disk ≥ 4 GiB, would take),
 * and deployed with a small GPT qcow2 made here; once ospd reports it active
 * the disks are read on the host: the second holds the image and a config-2
 * partition at its end, the first is untouched. Undeploy cleans it back to
 * available and the partition table is gone.
 * Serial consoles, ospd's log and timings.json stay in .tmp/lab-e2e/deploy-*.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { waitFor } from '../harness/wait.js';
import { runProgram } from '../harness/ospd.js';
import { MIB, run, sparseRaw } from '../provision/images.js';
import { driveFile, sha256Range } from '../provision/deployed-disk.js';
import { BMC_PASSWORD, BMC_USER, GIB, Lab, type NodeJson } from './lab.js';
import type { LabMachine } from './lab-machine.js';

/** One ramdisk boot under TCG on a shared 2-core box: iPXE, 45 MB over HTTP, kernel, agent, its work. */
const RAMDISK_BUDGET_MS = 360_000;
const NODE = 'lab-deploy';
const MAC = '52:54:00:8a:01:01';
const IMAGE_BYTES = 64 * MIB;
const SECTOR = 512;
const DISKS = [{ sizeBytes: 5 * GIB, serial: 'lab-deploy-d0' }, { sizeBytes: 6 * GIB, serial: 'lab-deploy-d1' }];

const lab = new Lab('deploy');
let machine: LabMachine;
let qcow2 = '';
/** Where the deploy put the config drive on the second disk, in bytes. */
let driveOffsetBytes = 0;
const timings: Record<string, number> = {};

/** Runs `step`, recording its duration in timings.json beside the logs. */
async function timed<T>(name: string, step: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await step();
  } finally {
    timings[name] = Date.now() - t0;
    writeFileSync(join(lab.run, 'timings.json'), JSON.stringify(timings, null, 2));
  }
}

/** ospctl's --wait verb, bounded by the ramdisk budget; the state it ended in, explained on failure. */
async function waitVerb(args: string[]): Promise<NodeJson> {
  const r = await lab.ctl([...args, '--wait', '-f', 'json'], RAMDISK_BUDGET_MS + 60_000);
  expect(r.code, `ospctl ${args.join(' ')}: ${r.stderr}${lab.diagnosis()}`).toBe(0);
  return JSON.parse(r.stdout) as NodeJson;
}

async function poweredOff(): Promise<void> {
  await waitFor(`${NODE} powered off`, async () => (!machine.running ? true : undefined), { timeoutMs: 60_000, intervalMs: 1000, detail: lab.diagnosis });
}

/** True when the first `lengthBytes` of `file` are all zero (cmp against /dev/zero: holes read as zeros). */
async function allZero(file: string, lengthBytes: number): Promise<boolean> {
  const r = await runProgram('cmp', ['-s', '-n', String(lengthBytes), file, '/dev/zero'], { timeoutMs: 120_000 });
  return r.code === 0;
}

beforeAll(async () => {
  await timed('prepare (ramdisk build, namespace)', () => lab.prepare());
  machine = await lab.addMachine({ name: NODE, mac: MAC, cpus: 1, memoryMb: 1024, disks: DISKS }, 21);
  await lab.startOspd(lab.ospdArgs(RAMDISK_BUDGET_MS));
  // A GPT disk image with data at scattered places (the config drive needs a partition table to extend), as qcow2.
  const raw = join(lab.run, 'image.raw');
  sparseRaw(raw, IMAGE_BYTES, [[MIB, 300_000], [20 * MIB + 4096, 2 * MIB], [50 * MIB, 12_345]]);
  run('sgdisk', ['-n', '1:2048:+40M', '-t', '1:8300', raw]);
  qcow2 = join(lab.run, 'image.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
}, 420_000);

afterAll(async () => {
  await lab.destroy();
}, 60_000);

describe('lab: a two-disk QEMU machine behind ipmi_sim is inspected, provided, deployed to the disk its root device hint names, undeployed', () => {
  it('imports, manages and inspects: both disks in the inventory with their serials', async () => {
    const file = join(lab.run, 'nodes.json');
    writeFileSync(file, JSON.stringify({
      nodes: [{ name: NODE, pm_type: 'ipmi', pm_addr: `${lab.net.prefix}.21`, pm_port: '623', pm_user: BMC_USER, pm_password: BMC_PASSWORD, mac: [MAC] }],
    }), { mode: 0o600 });
    await lab.ok(['node', 'import', file]);
    expect((await lab.json<NodeJson>(['node', 'manage', NODE, '--wait'], 90_000)).provision_state).toBe('manageable');
    const n = await timed('inspect', () => waitVerb(['node', 'inspect', NODE]));
    expect([n.provision_state, n.last_error]).toEqual(['manageable', '']);
    const doc = await lab.inventoryOf(NODE);
    expect(doc?.disks?.map((d) => [d.size, d.serial])).toEqual(expect.arrayContaining(DISKS.map((d) => [d.sizeBytes, d.serial])));
    await poweredOff();
  }, RAMDISK_BUDGET_MS + 180_000);

  it('provide cleans through the ramdisk: available', async () => {
    const n = await timed('provide (cleaning)', () => waitVerb(['node', 'provide', NODE]));
    expect([n.provision_state, n.last_error]).toEqual(['available', '']);
    await poweredOff();
  }, RAMDISK_BUDGET_MS + 120_000);

  it('deploys to the disk the hint names: the image as qemu-img converts it plus a config-2 partition at the end; the other disk untouched', async () => {
    const up = await timed('image upload', () => lab.ctl(['image', 'upload', 'lab-img', qcow2], 120_000));
    expect(up.code, up.stderr).toBe(0);
    await lab.ok(['node', 'set', NODE, '--root-device', `serial=${DISKS[1].serial}`]);
    const n = await timed('deploy', () => waitVerb(['node', 'deploy', NODE, '--image', 'lab-img', '--hostname', 'lab-deploy-1']));
    expect([n.provision_state, n.last_error]).toEqual(['active', '']);
    // ospd set the disk as boot device (persistent) and rebooted: the BMC saw both (ipmi_sim names 'bootdev disk' default, the hard drive).
    expect(machine.calls()).toContain('set boot default');
    expect(machine.calls().filter((c) => c.startsWith('power on')).at(-1)).toMatch(/boot default/);
    // The test image holds no boot loader: nothing to wait for, the disks are read once the machine is off.
    await lab.ok(['node', 'power', 'off', NODE], 60_000);
    await poweredOff();

    const disk = machine.diskPath(1);
    const ref = join(lab.run, 'image-ref.raw');
    run('qemu-img', ['convert', '-O', 'raw', qcow2, ref]);
    // Adding the config drive partition rewrote the primary GPT (LBA 0-33) and moved the backup (the image's last 33 sectors); all else is as written.
    const start = 34 * SECTOR;
    const length = IMAGE_BYTES - start - 33 * SECTOR;
    expect(await sha256Range(disk, start, length)).toBe(await sha256Range(ref, start, length));
    const table = JSON.parse(run('sfdisk', ['--json', disk])) as { partitiontable: { label: string; partitions: { start: number; size: number }[] } };
    expect(table.partitiontable.label).toBe('gpt');
    const drive = table.partitiontable.partitions.at(-1)!;
    expect(table.partitiontable.partitions).toHaveLength(2);
    // At the end of the disk, not of the image: the root file system may grow into the space between.
    expect((drive.start + drive.size) * SECTOR).toBeGreaterThanOrEqual(DISKS[1].sizeBytes - MIB);
    driveOffsetBytes = drive.start * SECTOR;
    expect(run('blkid', ['-p', '-o', 'value', '-s', 'LABEL', '-O', String(driveOffsetBytes), disk]).trim().toLowerCase()).toBe('config-2');
    const meta = JSON.parse(driveFile(disk, 'meta_data.json')) as Record<string, unknown>;
    expect(meta.uuid).toBe(n.uuid);
    expect(meta.hostname).toBe('lab-deploy-1');
    const agentYaml = YAML.parse(driveFile(disk, 'osp-agent.yaml')) as { node: string; server: string };
    expect(agentYaml.node).toBe(NODE);
    // The deployed system reaches ospd where the machines do: the advertise address on the provisioning LAN.
    expect(agentYaml.server).toMatch(new RegExp(`^${lab.net.serverIp.replace(/\./g, '\\.')}:\\d+$`));
    expect(await allZero(machine.diskPath(0), DISKS[0].sizeBytes), 'the disk the hint did not name is all zeros').toBe(true);
  }, RAMDISK_BUDGET_MS + 240_000);

  it('undeploy cleans through the ramdisk: available, the deployed disk\'s partition table and config drive gone', async () => {
    const n = await timed('undeploy', () => waitVerb(['node', 'undeploy', NODE]));
    expect([n.provision_state, n.last_error]).toEqual(['available', '']);
    await poweredOff();
    const disk = machine.diskPath(1);
    const sfdisk = await runProgram('sfdisk', ['--json', disk], { timeoutMs: 30_000 });
    expect(sfdisk.code, `sfdisk still reads a table: ${sfdisk.stdout}`).not.toBe(0);
    const label = await runProgram('blkid', ['-p', '-o', 'value', '-s', 'LABEL', '-O', String(driveOffsetBytes), disk], { timeoutMs: 30_000 });
    expect(label.stdout.trim(), 'the config drive (it held the node token) is wiped too').toBe('');
    expect(await allZero(machine.diskPath(0), DISKS[0].sizeBytes)).toBe(true);
  }, RAMDISK_BUDGET_MS + 120_000);
});
