import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { silentLogger } from '../../common/logging.js';
import { ImageBuilder, RAMDISK_BUDGET_BYTES, repoDir } from '../../image-builder/builder.js';
import { mountsUnder } from '../../image-builder/chroot-mounts.js';
import { QemuSerialGuest } from './qemu-serial.js';

const outDir = mkdtempSync(join(tmpdir(), 'osp-image-ramdisk-'));
const guests: QemuSerialGuest[] = [];
afterAll(async () => {
  for (const g of guests) await g.stop();
  if (mountsUnder(outDir).length === 0) rmSync(outDir, { recursive: true, force: true });
});

function loopDevicesBackedBy(dir: string): string[] {
  const out = execFileSync('losetup', ['-l', '-n', '-O', 'BACK-FILE'], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(resolve(dir)));
}

const agentBinary = process.env.OSP_AGENT_BINARY ?? join(repoDir(), 'dist/osp-agent');

describe('ramdisk image', () => {
  it('stops with element, phase, script and exit code named when the agent binary is missing, leaving no mounts or loops', async () => {
    const b = new ImageBuilder({ logger: silentLogger(), extraEnv: { OSP_AGENT_BINARY: join(outDir, 'no-such-agent') } });
    await expect(b.build({ output: join(outDir, 'broken'), type: 'ramdisk', elements: ['ramdisk', 'osp-agent'], packages: [], arguments: [] }))
      .rejects.toThrow(/element 'osp-agent' phase 'extra-data.d' script '50-osp-agent-binary' exited with code 2: .*no-such-agent' not found/);
    expect(mountsUnder(outDir)).toEqual([]);
    expect(loopDevicesBackedBy(outDir)).toEqual([]);
    expect(readdirSync(outDir).filter((f) => f.startsWith('.osp-image-build-'))).toEqual([]);
  });

  it('builds kernel + initramfs within budget and boots in QEMU to DHCP and osp-agent ramdisk', async () => {
    if (!existsSync(agentBinary)) {
      throw new Error(`agent binary ${agentBinary} is missing: run 'npm run build:agent' first (the ramdisk test needs the real agent)`);
    }
    const out = join(outDir, 'rd');
    const manifest = await new ImageBuilder({ logger: silentLogger() })
      .build({ output: out, type: 'ramdisk', elements: ['ramdisk', 'osp-agent'], packages: [], arguments: ['test'] });

    const initramfs = manifest.outputs.find((o) => o.path === `${out}.initramfs`)!;
    expect(initramfs.sizeBytes).toBeLessThan(RAMDISK_BUDGET_BYTES);
    expect(manifest.initramfsSizeBytes).toBe(initramfs.sizeBytes);
    expect(manifest.elements).toEqual(['ramdisk', 'osp-agent']);
    expect(manifest.agentVersion).toMatch(/\+sha256\.[0-9a-f]{16}$/);
    for (const o of manifest.outputs) {
      expect(readFileSync(`${o.path}.sha256`, 'utf8')).toBe(`${o.sha256}  ${o.path.split('/').pop()}\n`);
    }
    execFileSync('sha256sum', ['-c', 'rd.kernel.sha256', 'rd.initramfs.sha256', 'rd.manifest.json.sha256'], { cwd: outDir });
    expect(JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')).outputs).toHaveLength(2);

    // restrict=on: the guest gets QEMU's built-in DHCP but no route off this machine.
    const guest = new QemuSerialGuest([
      '-accel', 'tcg', '-m', '1536', '-smp', '1', '-nographic', '-no-reboot', '-monitor', 'none',
      '-kernel', `${out}.kernel`, '-initrd', `${out}.initramfs`,
      '-append', 'console=ttyS0 panic=-1 osp.server=10.0.2.2:9 osp.ca_sha256=00',
      '-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0',
    ]);
    guests.push(guest);
    guest.start();
    await guest.waitFor(/osp-ramdisk: init started/, 300_000);
    const lease = await guest.waitFor(/osp-ramdisk: dhcp (\S+) bound (10\.0\.2\.\d+)\/\d+/, 120_000);
    expect(lease[2]).toMatch(/^10\.0\.2\.(1[5-9]|[2-9]\d)$/);
    expect(guest.console).toContain('osp-ramdisk: osp.server=10.0.2.2:9');
    await guest.waitFor(/osp-ramdisk: starting osp-agent ramdisk \(attempt 1\)/, 60_000);
    // The exec itself must work (loader and libraries present): 126/127 would mean it never ran.
    await new Promise((r) => setTimeout(r, 15_000));
    expect(guest.console).not.toMatch(/osp-agent exited with code 12[67]/);
    expect(guest.console).not.toMatch(/Kernel panic/);
    // /init keeps the agent alive: an exit is followed by another start.
    if (/osp-agent exited with code/.test(guest.console)) await guest.waitFor(/starting osp-agent ramdisk \(attempt 2\)/, 30_000);
    // The agent itself must have taken over in ramdisk mode (not refused it).
    expect(guest.console, 'osp-agent ramdisk mode answered on the serial console').not.toMatch(/osp-agent: ramdisk: this build has no ramdisk support/);
  }, 900_000);
});
