import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../common/logging.js';
import { ImageBuilder, repoDir } from '../../image-builder/builder.js';
import { mountsUnder } from '../../image-builder/chroot-mounts.js';
import { QemuSerialGuest } from './qemu-serial.js';
import { GuestForward } from './guest-forward.js';
import { OspdProcess } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';

const OVMF = ['/usr/share/ovmf/OVMF.fd', '/usr/share/OVMF/OVMF_CODE.fd'].find((p) => existsSync(p));
const NODE = 'image-test';

describe.runIf(process.env.OSP_SLOW_TESTS)('whole-disk image boot (slow: runs only with OSP_SLOW_TESTS=1, npm run test:slow)', () => {
  // Made in beforeAll, not here: vitest runs this body even when the suite is skipped, and it would leak a temp dir.
  let outDir = '';
  let forward: GuestForward;
  const guests: QemuSerialGuest[] = [];
  let ospd: OspdProcess;
  let grpcPort = 0;
  let mqttPort = 0;
  afterAll(async () => {
    for (const g of guests) await g.stop();
    await ospd?.stop();
    if (outDir && mountsUnder(outDir).length === 0) rmSync(outDir, { recursive: true, force: true });
  });

  const ctlJson = async (args: string[]) => {
    const r = await ospd.ctl([...args, '-f', 'json']);
    if (r.code !== 0) throw new Error(`ospctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const status = () => ctlJson(['node', 'config', 'status', NODE]);
  let metaSeq = 0;
  const setMetadata = async (m: object): Promise<number> => {
    const f = join(outDir, `meta-${++metaSeq}.json`);
    writeFileSync(f, JSON.stringify(m));
    return (await ctlJson(['node', 'config', 'set', NODE, '--metadata', f])).revision as number;
  };

  // A user element, as the README's worked example: drops the agent's config into the image.
  let userElements = '';
  let image = '';

  beforeAll(async () => {
    // npm run test:slow has no pretest hook: say what to build instead of failing inside ospd's spawn.
    for (const f of ['dist/server/main.js', 'dist/cli/main.js', 'dist/osp-agent']) {
      if (!existsSync(join(repoDir(), f))) throw new Error(`${f} is missing: run npm run build && npm run build:agent (or npm test) first`);
    }
    outDir = mkdtempSync(join(tmpdir(), 'osp-image-disk-'));
    forward = new GuestForward(outDir);
    userElements = join(outDir, 'elements');
    image = join(outDir, 'overcloud');
    // Its data dir and log inside outDir, so afterAll removes them with the image. The ports it
    // binds are baked into the image's agent.yaml; ospd keeps running for both boots.
    ospd = new OspdProcess(mkdtempSync(join(outDir, 'ospd-')), ['--advertise-address', forward.guestAddress]);
    await ospd.start();
    [grpcPort, mqttPort] = [ospd.port, ospd.listeners!.mqtt.tls];
    const created = await ospd.ctl(['node', 'create', '--name', NODE, '--driver', 'fake']);
    if (created.code !== 0) throw new Error(`ospctl node create: ${created.stderr}`);
    const issued = await ospd.ctl(['node', 'agent-config', NODE]);
    if (issued.code !== 0) throw new Error(`ospctl node agent-config: ${issued.stderr}`);
    const cfg = parse(issued.stdout) as Record<string, string>;
    expect(cfg.server).toBe(`127.0.0.1:${grpcPort}`);
    expect(cfg.mqtt).toMatch(new RegExp(`^mqtts://127\\.0\\.0\\.1:${mqttPort}$`));
    // ospd listens on loopback; the guest reaches it through the forward rules at guestAddress.
    cfg.server = `${forward.guestAddress}:${grpcPort}`;
    cfg.mqtt = `mqtts://${forward.guestAddress}:${mqttPort}`;

    mkdirSync(join(userElements, 'test-agent-config/install.d'), { recursive: true });
    writeFileSync(join(userElements, 'test-agent-config/agent.yaml'), stringify(cfg), { mode: 0o600 });
    // Host side (extra-data.d) because the chroot cannot see the element folder.
    mkdirSync(join(userElements, 'test-agent-config/extra-data.d'), { recursive: true });
    const copy = join(userElements, 'test-agent-config/extra-data.d/70-agent-config');
    writeFileSync(copy, '#!/bin/sh\nset -e\nmkdir -p "$TARGET_ROOT/etc/osp-agent"\ninstall -m 0600 "$OSP_ELEMENT_DIR/agent.yaml" "$TARGET_ROOT/etc/osp-agent/agent.yaml"\n');
    chmodSync(copy, 0o755);
    const script = join(userElements, 'test-agent-config/install.d/70-agent-config');
    writeFileSync(script, '#!/bin/sh\nset -e\ntest -s /etc/osp-agent/agent.yaml\n');
    chmodSync(script, 0o755);
  }, 60_000);

  it('builds a qcow2 from debian-minimal vm osp-agent growroot', async () => {
    const m = await new ImageBuilder({ logger: silentLogger(), elementsPath: userElements })
      .build({ output: image, type: 'qcow2', sizeGiB: 3, elements: ['debian-minimal', 'vm', 'osp-agent', 'growroot', 'test-agent-config'], packages: [], arguments: ['test'] });
    expect(m.outputs.map((o) => o.path)).toEqual([`${image}.qcow2`]);
    expect(m.elements).toEqual(['debian-minimal', 'vm', 'osp-agent', 'growroot', 'test-agent-config']);
    expect(mountsUnder(outDir)).toEqual([]);
  }, 1_800_000);

  const boot = async (firmware: string[], label: string): Promise<void> => {
    // Committed before the guest exists: the disk is a fresh snapshot each boot, so only this guest's agent can apply it.
    const before = await setMetadata({ boot: label, phase: 'before-boot' });
    expect((await status()).connected).toBe(false);
    const g = new QemuSerialGuest([
      '-accel', 'tcg', '-m', '1536', '-nographic', '-no-reboot', '-monitor', 'none', ...firmware,
      '-drive', `file=${image}.qcow2,if=virtio,snapshot=on`,
      '-netdev', `user,id=n0,restrict=on,${forward.option(grpcPort)},${forward.option(mqttPort)}`,
      '-device', 'virtio-net-pci,netdev=n0',
    ]);
    guests.push(g);
    g.start();
    try {
      await g.waitFor(/Started osp-agent\.serv/, 900_000);
      expect(g.console).not.toMatch(/Failed to start osp-agent/);
      // The unit logs to the console: the agent names the revision it received from ospd.
      await g.waitFor(new RegExp(`"revision":${before}\\b[^\\n]*config revision received`), 300_000);
      const s = await waitFor(`revision ${before} applied by the ${label} guest`, async () => {
        const st = await status();
        return st.connected && st.applied_revision === before ? st : null;
      }, { timeoutMs: 120_000, intervalMs: 1_000, retryErrors: true });
      expect(s.status).toBe('succeeded');
      // A change while the guest runs travels the open stream.
      const live = await setMetadata({ boot: label, phase: 'while-running' });
      await waitFor(`revision ${live} applied`, async () => (await status()).applied_revision === live, { timeoutMs: 120_000, intervalMs: 500, retryErrors: true });
      // Telemetry over MQTT (TLS, through the second forward): ospd saw the agent come online with its facts.
      const inv = await waitFor('agent online over MQTT', async () => {
        const i = await ctlJson(['node', 'inventory', NODE]);
        return i.availability === 'online' && i.facts?.schema ? i : null;
      }, { timeoutMs: 120_000, intervalMs: 1_000, retryErrors: true });
      expect(inv.facts.schema).toBe('osp.inventory/v1');
      expect(g.console).not.toMatch(/osp-agent\[\d+\]: .*agent\.yaml: /);
    } finally {
      await g.stop();
    }
    // The guest is gone: ospd notices the stream end, so the next boot's checks cannot be met by this one.
    await waitFor(`${label} agent disconnected`, async () => !(await status()).connected, { timeoutMs: 60_000, intervalMs: 500, retryErrors: true });
  };

  it('boots with BIOS; systemd starts osp-agent and it applies config from the test\'s ospd', () => boot([], 'bios'), 1_200_000);
  it.runIf(OVMF)('boots with UEFI (OVMF); systemd starts osp-agent and it applies config from the test\'s ospd', () => boot(['-bios', OVMF!], 'uefi'), 1_200_000);
});
