import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
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
  // A throwaway CA so the agent accepts its config; the server side is not running here.
  const key = join(outDir, 'ca.key');
  const crt = join(outDir, 'ca.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', crt, '-subj', '/CN=osp-image-test-ca', '-days', '1'], { stdio: 'ignore' });
  const agentYaml = stringify({ server: '10.0.2.2:6385', ca: readFileSync(crt, 'utf8'), node: 'image-test', token: 'image-test-token' });
  writeFileSync(join(userElements, 'test-agent-config/agent.yaml'), agentYaml);
  // Host side (extra-data.d) because the chroot cannot see the element folder.
  mkdirSync(join(userElements, 'test-agent-config/extra-data.d'), { recursive: true });
  const copy = join(userElements, 'test-agent-config/extra-data.d/70-agent-config');
  writeFileSync(copy, '#!/bin/sh\nset -e\nmkdir -p "$TARGET_ROOT/etc/osp-agent"\ninstall -m 0600 "$OSP_ELEMENT_DIR/agent.yaml" "$TARGET_ROOT/etc/osp-agent/agent.yaml"\n');
  chmodSync(copy, 0o755);
  writeFileSync(script, '#!/bin/sh\nset -e\ntest -s /etc/osp-agent/agent.yaml\n');
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
      // The unit logs to the console: give the agent time to read its config, then check it accepted it.
      await new Promise((r) => setTimeout(r, 30_000));
      expect(g.console).not.toMatch(/osp-agent\[\d+\]: .*agent\.yaml: /);
    } finally {
      await g.stop();
    }
  };

  it('boots with BIOS and systemd starts osp-agent', () => boot([]), 1_000_000);
  it.runIf(OVMF)('boots with UEFI (OVMF) and systemd starts osp-agent', () => boot(['-bios', OVMF!]), 1_000_000);
});
