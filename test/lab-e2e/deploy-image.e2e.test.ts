/**
 * Issue 11's acceptance with the real image: the whole-disk qcow2 osp-image
 * builds from `debian-minimal vm osp-agent growroot` is uploaded to ospd and
 * deployed to two lab machines, one BIOS (SeaBIOS) and one UEFI (OVMF), each
 * behind its ipmi_sim BMC. After the deploy the machine boots its disk; the
 * image's osp-agent unit installs agent.yaml from the config drive, connects
 * to ospd at the advertise address with the fresh node token, applies a config
 * revision and publishes its facts over MQTT. Undeploy cleans it back to
 * available and the partition table is gone.
 * OSP_LAB_DISK_IMAGE=PREFIX uses PREFIX.qcow2 built earlier (iterating only).
 * Timings of every phase go to .tmp/lab-e2e/deploy-image-*\/timings.json.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../common/logging.js';
import { ImageBuilder, repoDir } from '../../image-builder/builder.js';
import { waitFor } from '../harness/wait.js';
import { runProgram } from '../harness/ospd.js';
import { BMC_PASSWORD, BMC_USER, GIB, Lab, type NodeJson } from './lab.js';
import { OVMF, type LabMachine } from './lab-machine.js';

/** One boot of the ramdisk or of the Debian image under TCG on a shared 2-core box. */
const BOOT_BUDGET_MS = 600_000;
const spec = [
  { name: 'lab-bios', mac: '52:54:00:8a:02:01', firmware: 'bios', bmcHost: 31 },
  { name: 'lab-uefi', mac: '52:54:00:8a:02:02', firmware: 'uefi', bmcHost: 32 },
] as const;

describe.runIf(process.env.OSP_SLOW_TESTS)('lab: the osp-image Debian image deployed to BIOS and UEFI machines, its agent connects with the config drive\'s token (slow: runs only with OSP_SLOW_TESTS=1, npm run test:slow)', () => {
  // Made in beforeAll, not here: vitest runs this body even when the suite is skipped.
  let lab: Lab;
  const machines: Record<string, LabMachine> = {};
  let image = '';
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, step: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await step();
    } finally {
      timings[name] = Date.now() - t0;
      writeFileSync(join(lab.run, 'timings.json'), JSON.stringify(timings, null, 2));
    }
  };
  const waitVerb = async (args: string[]): Promise<NodeJson> => {
    const r = await lab.ctl([...args, '--wait', '-f', 'json'], BOOT_BUDGET_MS + 60_000);
    expect(r.code, `ospctl ${args.join(' ')}: ${r.stderr}${lab.diagnosis()}`).toBe(0);
    return JSON.parse(r.stdout) as NodeJson;
  };
  const poweredOff = (m: LabMachine) => waitFor(`${m.opts.name} powered off`, async () => (!m.running ? true : undefined), { timeoutMs: 60_000, intervalMs: 1000, detail: lab.diagnosis });

  beforeAll(async () => {
    for (const f of ['dist/server/main.js', 'dist/cli/main.js', 'dist/osp-agent']) {
      if (!existsSync(join(repoDir(), f))) throw new Error(`${f} is missing: run npm run build && npm run build:agent (or npm test) first`);
    }
    lab = new Lab('deploy-image');
    await timed('prepare (ramdisk build, namespace)', () => lab.prepare());
    for (const s of spec) {
      machines[s.name] = await lab.addMachine({ name: s.name, mac: s.mac, cpus: 1, memoryMb: 1536, disks: [{ sizeBytes: 5 * GIB, serial: `${s.name}-d0` }], firmware: s.firmware }, s.bmcHost);
    }
    // The deployed agent publishes telemetry: MQTT must listen where the machines are, not on the harness's loopback.
    await lab.startOspd(lab.ospdArgs(BOOT_BUDGET_MS, ['--mqtt-listen', '0.0.0.0:0']));
  }, 420_000);

  afterAll(async () => {
    await lab?.destroy();
  }, 60_000);

  it('builds the image (debian-minimal vm osp-agent growroot) and uploads it', async () => {
    const prebuilt = process.env.OSP_LAB_DISK_IMAGE;
    image = prebuilt ? `${prebuilt}.qcow2` : join(lab.run, 'overcloud.qcow2');
    if (!prebuilt) {
      await timed('image build', () => new ImageBuilder({ logger: silentLogger() })
        .build({ output: join(lab.run, 'overcloud'), type: 'qcow2', sizeGiB: 3, elements: ['debian-minimal', 'vm', 'osp-agent', 'growroot'], packages: [], arguments: ['lab'] }));
    }
    const up = await timed('image upload', () => lab.ctl(['image', 'upload', 'overcloud', image], 600_000));
    expect(up.code, up.stderr).toBe(0);
  }, 1_800_000);

  it('imports, manages, inspects and provides both machines', async () => {
    const file = join(lab.run, 'nodes.json');
    writeFileSync(file, JSON.stringify({
      nodes: spec.map((s) => ({ name: s.name, pm_type: 'ipmi', pm_addr: `${lab.net.prefix}.${s.bmcHost}`, pm_port: '623', pm_user: BMC_USER, pm_password: BMC_PASSWORD, mac: [s.mac] })),
    }), { mode: 0o600 });
    await lab.ok(['node', 'import', file]);
    for (const s of spec) expect((await lab.json<NodeJson>(['node', 'manage', s.name, '--wait'], 90_000)).provision_state).toBe('manageable');
    for (const [verb, state] of [['inspect', 'manageable'], ['provide', 'available']] as const) {
      const nodes = await timed(`${verb} (both in parallel)`, () => Promise.all(spec.map((s) => waitVerb(['node', verb, s.name]))));
      expect(nodes.map((n) => [n.provision_state, n.last_error])).toEqual(spec.map(() => [state, '']));
      for (const s of spec) await poweredOff(machines[s.name]);
    }
  }, 2 * BOOT_BUDGET_MS + 300_000);

  for (const s of spec) {
    it.runIf(s.firmware === 'bios' || OVMF)(`${s.firmware}: deployed, boots its disk, its agent applies a config revision and reports online over MQTT; undeploy leaves no partition table`, async () => {
      const m = machines[s.name];
      const n = await timed(`${s.firmware}: deploy`, () => waitVerb(['node', 'deploy', s.name, '--image', 'overcloud']));
      expect([n.provision_state, n.last_error]).toEqual(['active', '']);
      // Committed before the deployed system's agent can connect: it must fetch it on its first stream.
      const meta = join(lab.run, `${s.name}-meta.json`);
      writeFileSync(meta, JSON.stringify({ lab: s.name, firmware: s.firmware }));
      const revision = (await lab.json<{ revision: number }>(['node', 'config', 'set', s.name, '--metadata', meta])).revision;
      const applied = await timed(`${s.firmware}: disk boot until the config revision is applied`, () => waitFor(`${s.name}'s deployed agent applies revision ${revision}`, async () => {
        const st = await lab.json<{ connected: boolean; applied_revision: number; status: string }>(['node', 'config', 'status', s.name]);
        return st.connected && st.applied_revision === revision ? st : undefined;
      }, { timeoutMs: BOOT_BUDGET_MS, intervalMs: 3000, detail: lab.diagnosis }));
      expect(applied.status).toBe('succeeded');
      expect(m.serial()).toMatch(/osp-agent: installed \/etc\/osp-agent\/agent\.yaml from the config drive/);
      const inv = await timed(`${s.firmware}: facts over MQTT`, () => waitFor(`${s.name} online over MQTT`, async () => {
        const i = await lab.json<{ availability: string; facts?: { schema?: string } }>(['node', 'inventory', s.name]);
        return i.availability === 'online' && i.facts?.schema ? i : undefined;
      }, { timeoutMs: 180_000, intervalMs: 3000, detail: lab.diagnosis }));
      expect(inv.facts?.schema).toBe('osp.inventory/v1');

      const u = await timed(`${s.firmware}: undeploy`, () => waitVerb(['node', 'undeploy', s.name]));
      expect([u.provision_state, u.last_error]).toEqual(['available', '']);
      await poweredOff(m);
      const sfdisk = await runProgram('sfdisk', ['--json', m.diskPath(0)], { timeoutMs: 30_000 });
      expect(sfdisk.code, `sfdisk still reads a table: ${sfdisk.stdout}`).not.toBe(0);
    }, 3 * BOOT_BUDGET_MS);
  }
});
