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
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../harness/wait.js';
import { BMC_PASSWORD, BMC_USER, GIB, Lab, type NodeJson } from './lab.js';
import type { LabMachine } from './lab-machine.js';

/** One machine's whole inspection under TCG on a shared 2-core box: iPXE (~13 s IPv6 wait), 45 MB over HTTP, kernel, agent. */
const INSPECT_BUDGET_MS = 360_000;

const lab = new Lab('run');
const spec = [
  { name: 'lab-small', mac: '52:54:00:8a:00:01', cpus: 1, diskSizeBytes: 5 * GIB, bmcHost: 11 },
  { name: 'lab-big', mac: '52:54:00:8a:00:02', cpus: 2, diskSizeBytes: 9 * GIB, bmcHost: 12 },
  { name: 'lab-stranger', mac: '52:54:00:8a:00:03', cpus: 1, diskSizeBytes: 6 * GIB, bmcHost: 0 },
] as const;
const machines: LabMachine[] = lab.machines;
const small = (): LabMachine => machines[0];
const stranger = (): LabMachine => machines[2];

beforeAll(async () => {
  await lab.prepare();
  for (const s of spec) {
    await lab.addMachine({ name: s.name, mac: s.mac, cpus: s.cpus, memoryMb: 1024, disks: [{ sizeBytes: s.diskSizeBytes, serial: `${s.name}-d0` }] }, s.bmcHost || undefined);
  }
  await lab.startOspd(lab.ospdArgs(INSPECT_BUDGET_MS));
}, 420_000);

afterAll(async () => {
  await lab.destroy();
}, 60_000);

describe('lab: discovery and inspection of QEMU machines behind ipmi_sim BMCs, through ospd and ospctl', () => {
  it('imports both machines and manage verifies their BMCs', async () => {
    const file = join(lab.run, 'nodes.json');
    writeFileSync(file, JSON.stringify({
      nodes: spec.filter((s) => s.bmcHost).map((s) => ({
        name: s.name, pm_type: 'ipmi', pm_addr: `${lab.net.prefix}.${s.bmcHost}`, pm_port: '623', pm_user: BMC_USER, pm_password: BMC_PASSWORD, mac: [s.mac],
      })),
    }), { mode: 0o600 });
    await lab.ok(['node', 'import', file]);
    const states = await Promise.all(['lab-small', 'lab-big'].map((n) => lab.json<NodeJson>(['node', 'manage', n, '--wait'], 90_000)));
    expect(states.map((n) => [n.provision_state, n.last_error])).toEqual([['manageable', ''], ['manageable', '']]);
  }, 120_000);

  it('inspects both in parallel: real disk size, MAC and CPU count in the inventory, a rule sets profile:compute by disk size, powered off', async () => {
    const rules = join(lab.run, 'rules.json');
    writeFileSync(rules, JSON.stringify([{
      description: 'a root disk of 6 GiB or more makes a compute node',
      conditions: [{ op: 'ge', field: 'local_gb', value: 6 }],
      actions: [{ action: 'set-capability', name: 'profile', value: 'compute' }],
    }]));
    await lab.ok(['rule', 'import', rules]);
    const results = await Promise.all(['lab-small', 'lab-big'].map((n) => lab.ctl(['node', 'inspect', n, '--wait', '-f', 'json'], INSPECT_BUDGET_MS + 60_000)));
    for (const r of results) expect(r.code, `${r.stderr}${lab.diagnosis()}`).toBe(0);

    for (const [i, s] of spec.slice(0, 2).entries()) {
      const n = await lab.json<NodeJson>(['node', 'show', s.name]);
      expect(n.provision_state).toBe('manageable');
      expect(n.last_error).toBe('');
      expect(n.properties.cpus).toBe(s.cpus);
      // inspector's convention: whole GiB of the root disk, less 1 GiB for partitioning.
      expect(n.properties.local_gb).toBe(s.diskSizeBytes / GIB - 1);
      const doc = await lab.inventoryOf(s.name);
      expect(doc, `inventory of ${s.name}`).toBeDefined();
      expect(doc?.cpu?.count).toBe(s.cpus);
      expect(doc?.disks?.map((d) => d.size)).toContain(s.diskSizeBytes);
      expect(doc?.interfaces?.map((x) => x.mac_address.toLowerCase())).toContain(s.mac);
      // The BMC was asked to PXE boot and power on, then off: QEMU is gone.
      const m = machines[i];
      expect(m.calls()).toContain('set boot pxe');
      expect(m.calls().filter((c) => c.startsWith('power on'))).toHaveLength(1);
      await waitFor(`${s.name} powered off`, async () => (!m.running && (await lab.json<NodeJson>(['node', 'show', s.name])).power_state === 'off' ? true : undefined), { timeoutMs: 60_000, intervalMs: 2000, detail: lab.diagnosis });
    }
    const profiles = await lab.json<NodeJson[]>(['node', 'list', '--profile', 'compute']);
    expect(profiles.map((n) => n.name)).toEqual(['lab-big']);
    expect((await lab.json<NodeJson>(['node', 'show', 'lab-small'])).capabilities.profile).toBeUndefined();
  }, INSPECT_BUDGET_MS + 120_000);

  it('with discovery on, a machine nobody registered boots the ramdisk and enrols itself', async () => {
    await lab.startOspd(lab.ospdArgs(INSPECT_BUDGET_MS, ['--discovery']));
    stranger().powerOn();
    const found = await waitFor('the stranger enrols', async () => {
      const nodes = await lab.json<NodeJson[]>(['node', 'list', '--long']);
      return nodes.find((n) => !['lab-small', 'lab-big'].includes(n.name));
    }, { timeoutMs: INSPECT_BUDGET_MS, intervalMs: 3000, detail: lab.diagnosis });
    expect(found.provision_state).toBe('enroll');
    const doc = await waitFor('the stranger\'s inventory', () => lab.inventoryOf(found.uuid), { timeoutMs: 60_000, intervalMs: 2000, detail: lab.diagnosis });
    expect(doc?.interfaces?.map((x) => x.mac_address.toLowerCase())).toContain(spec[2].mac);
    expect(doc?.disks?.map((d) => d.size)).toContain(spec[2].diskSizeBytes);
    const history = await lab.json<{ type: string }[]>(['node', 'history', found.uuid]);
    expect(history.map((e) => e.type)).toContain('discovery');
    // Nobody holds its BMC: the agent's power_off command is what switches it off.
    await waitFor('the stranger powers itself off', async () => (stranger().running ? undefined : true), { timeoutMs: 60_000, intervalMs: 2000, detail: lab.diagnosis });
    expect(stranger().serial()).toMatch(/"kind":"power_off","msg":"command received"/);
  }, INSPECT_BUDGET_MS + 60_000);

  it('a machine whose cable is pulled times out, explained as "no DHCP request from <mac>"', async () => {
    lab.net.unplug(small().opts.tap);
    await lab.ok(['node', 'set', 'lab-small', '--capability', 'inspect_wait_timeout_ms=30000']);
    const r = await lab.ctl(['node', 'inspect', 'lab-small', '--wait', '-f', 'json'], 120_000);
    expect(r.code).not.toBe(0);
    const n = await lab.json<NodeJson>(['node', 'show', 'lab-small']);
    expect(n.provision_state).toBe('inspect failed');
    expect(n.last_error).toMatch(new RegExp(`no DHCP request from ${spec[0].mac}`));
    // The BMC did power it on: the machine was there, only its NIC was cut off.
    expect(small().calls().filter((c) => c.startsWith('power on')).length).toBeGreaterThanOrEqual(2);
  }, 180_000);
});
