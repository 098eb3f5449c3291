import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConfigDrive } from '../../server/provision/config-drive.js';
import { REPO } from '../harness/ospd.js';
import { KERNEL_VFAT, loopAttach, loopDetach, sampleInput, sh, shCode } from './config-drive-helpers.js';

const SCRIPT = path.join(REPO, 'image-builder/elements/osp-agent/files/osp-agent-config-drive');
const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-cd-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The drive the script mounts: ospd's own vfat drive where this kernel mounts
 * vfat; otherwise the same layout on ext4 (the script names no filesystem type).
 */
const FS = KERNEL_VFAT ? 'vfat, built by ospd' : 'ext4 with the same layout: this kernel has no vfat';
async function driveWith(name: string, agentYaml: string): Promise<string> {
  const img = path.join(dir, `${name}.img`);
  if (KERNEL_VFAT) {
    writeFileSync(img, await buildConfigDrive(sampleInput(path.join(dir, 'work'), { agentYaml })));
    return img;
  }
  const tree = path.join(dir, `${name}-tree`);
  mkdirSync(path.join(tree, 'openstack/latest'), { recursive: true });
  writeFileSync(path.join(tree, 'openstack/latest/osp-agent.yaml'), agentYaml);
  writeFileSync(img, '');
  truncateSync(img, 4 * 1024 * 1024);
  await sh('mkfs.ext4', ['-q', '-F', '-L', 'config-2', '-d', tree, img]);
  return img;
}

describe(`osp-agent-config-drive, the image's ExecStartPre (drive: ${FS})`, () => {
  const etc = path.join(dir, 'etc/osp-agent');
  const conf = path.join(etc, 'agent.yaml');
  // dash: the script must stay POSIX sh, as the image's /bin/sh is.
  const run = (device: string) => shCode('dash', [SCRIPT], { OSP_CONFIG_DRIVE_DEVICE: device, OSP_AGENT_CONFIG: conf });

  it('installs the drive’s agent.yaml (0600), keeps a hand-replaced one across reboots, and takes a new drive’s copy', async () => {
    const first = await loopAttach(await driveWith('first', 'token: first-deploy\n'));
    try {
      const r = await run(first);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(conf, 'utf8')).toBe('token: first-deploy\n');
      expect(statSync(conf).mode & 0o777).toBe(0o600);
      expect(existsSync(`${conf}.new`)).toBe(false);

      writeFileSync(conf, 'token: replaced-by-hand\n', { mode: 0o600 });
      const again = await run(first);
      expect(again.code, again.stderr).toBe(0);
      expect(readFileSync(conf, 'utf8')).toBe('token: replaced-by-hand\n');
    } finally {
      await loopDetach(first);
    }
    const rebuilt = await loopAttach(await driveWith('rebuilt', 'token: rebuild\n'));
    try {
      const r = await run(rebuilt);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(conf, 'utf8')).toBe('token: rebuild\n');
    } finally {
      await loopDetach(rebuilt);
    }
  });

  it('without a usable drive: an existing agent.yaml is kept; with none the unit fails saying why', async () => {
    mkdirSync(etc, { recursive: true });
    writeFileSync(conf, 'token: earlier\n', { mode: 0o600 });
    const kept = await run(path.join(dir, 'no-such-device'));
    expect(kept.code).toBe(0);
    expect(kept.stderr).toMatch(/cannot mount the config drive .*no-such-device; keeping /);
    rmSync(conf);
    const failed = await run(path.join(dir, 'no-such-device'));
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/cannot mount the config drive .*no-such-device, and no .*agent\.yaml/);
  });
});
