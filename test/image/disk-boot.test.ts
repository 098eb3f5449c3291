import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../common/logging.js';
import { ImageBuilder, repoDir } from '../../image-builder/builder.js';
import { mountsUnder } from '../../image-builder/chroot-mounts.js';
import { QemuSerialGuest } from './qemu-serial.js';

const OVMF = ['/usr/share/ovmf/OVMF.fd', '/usr/share/OVMF/OVMF_CODE.fd'].find((p) => existsSync(p));

describe.runIf(process.env.OSP_SLOW_TESTS)('whole-disk image boot (slow: runs only with OSP_SLOW_TESTS=1, npm run test:slow)', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'osp-image-disk-'));
  const guests: QemuSerialGuest[] = [];
  afterAll(async () => {
    for (const g of guests) await g.stop();
    if (mountsUnder(outDir).length === 0) rmSync(outDir, { recursive: true, force: true });
  });

  // A user element, as the README's worked example: drops the agent's config into the image.
  const userElements = join(outDir, 'elements');
  mkdirSync(join(userElements, 'test-agent-config/install.d'), { recursive: true });
  const script = join(userElements, 'test-agent-config/install.d/70-agent-config');
  writeFileSync(script, '#!/bin/sh\nset -e\nmkdir -p /etc/osp-agent\nprintf "server: 10.0.2.2:6385\\n" > /etc/osp-agent/agent.yaml\n');
  chmodSync(script, 0o755);
  const image = join(outDir, 'overcloud');

  it('builds a qcow2 from debian-minimal vm osp-agent growroot', async () => {
    if (!existsSync(join(repoDir(), 'dist/osp-agent'))) throw new Error('dist/osp-agent is missing: run npm run build:agent first');
    const m = await new ImageBuilder({ logger: silentLogger(), elementsPath: userElements })
      .build({ output: image, type: 'qcow2', sizeGiB: 3, elements: ['debian-minimal', 'vm', 'osp-agent', 'growroot', 'test-agent-config'], packages: [], arguments: ['test'] });
    expect(m.outputs.map((o) => o.path)).toEqual([`${image}.qcow2`]);
    expect(m.elements).toEqual(['debian-minimal', 'vm', 'osp-agent', 'growroot', 'test-agent-config']);
    expect(mountsUnder(outDir)).toEqual([]);
  }, 1_800_000);

  const boot = async (firmware: string[]): Promise<void> => {
    const g = new QemuSerialGuest([
      '-accel', 'tcg', '-m', '1536', '-nographic', '-no-reboot', '-monitor', 'none', ...firmware,
      '-drive', `file=${image}.qcow2,if=virtio,snapshot=on`,
      '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0',
    ]);
    guests.push(g);
    g.start();
    try {
      await g.waitFor(/Started osp-agent\.serv/, 900_000);
      expect(g.console).not.toMatch(/Failed to start osp-agent/);
    } finally {
      await g.stop();
    }
  };

  it('boots with BIOS and systemd starts osp-agent', () => boot([]), 1_000_000);
  it.runIf(OVMF)('boots with UEFI (OVMF) and systemd starts osp-agent', () => boot(['-bios', OVMF!]), 1_000_000);
});
