import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { collectInventory, HostSources, type InventorySources } from '../../agent/inventory/index.js';
import { HostMetricsCollector } from '../../agent/telemetry/metrics.js';
import { FIXTURES } from '../harness/fixtures.js';
import { tempDir } from './helpers.js';

const INVENTORIES = join(FIXTURES, 'ironic', 'inventory');

function write(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

/** A small machine: two CPUs, one NIC, DMI strings, UEFI, PXE-booted. */
function fakeMachine(root: string): void {
  const cpu = (n: number) => `processor\t: ${n}\nmodel name\t: Intel(R) Xeon(R) CPU E5-2440 v2 @ 1.90GHz\ncpu MHz\t\t: 1899.999\nflags\t\t: fpu vme sse2 vmx\n`;
  write(root, 'proc/cpuinfo', `${cpu(0)}\n${cpu(1)}\n`);
  write(root, 'proc/meminfo', 'MemTotal:        6109632 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n');
  write(root, 'sys/devices/system/memory/block_size_bytes', '8000000\n');
  for (let i = 0; i < 48; i++) write(root, `sys/devices/system/memory/memory${i}/online`, '1\n');
  write(root, 'sys/class/net/eth0/address', '00:ca:ff:65:6e:68\n');
  write(root, 'sys/class/net/eth0/carrier', '1\n');
  write(root, 'sys/class/net/eth0/speed', '1000\n');
  write(root, 'sys/class/net/eth0/device/vendor', '0x1af4\n');
  write(root, 'sys/class/net/eth0/device/device', '0x0001\n');
  write(root, 'sys/class/net/lo/address', '00:00:00:00:00:00\n');
  write(root, 'sys/class/dmi/id/product_name', 'KVM\n');
  write(root, 'sys/class/dmi/id/sys_vendor', 'Red Hat\n');
  write(root, 'sys/class/dmi/id/product_serial', '\n');
  mkdirSync(join(root, 'sys/firmware/efi'), { recursive: true });
  write(root, 'proc/cmdline', 'ro quiet BOOTIF=01-00-ca-ff-65-6e-68 osp.server=x\n');
  write(root, 'proc/sys/kernel/hostname', 'compute-0\n');
  mkdirSync(join(root, 'dev/disk/by-path'), { recursive: true });
  symlinkSync('../../vda', join(root, 'dev/disk/by-path/pci-0000:00:05.0'));
  write(root, 'sys/block/vdb/serial', 'lab-d1\n');
}

/** Fixture commands: the only stand-in here, because lsblk/ipmitool would describe this host, not the fake root. */
class FakeRootSources extends HostSources implements InventorySources {
  override async run(command: string): Promise<string | null> {
    if (command === 'lsblk') {
      return JSON.stringify({ blockdevices: [
        { kname: 'vda', model: null, size: 53687091200, rota: true, wwn: null, serial: null, vendor: '0x1af4', hctl: null, type: 'disk' },
        // No udev (the ramdisk): lsblk has no serial, the kernel's sysfs copy has.
        { kname: 'vdb', model: null, size: 6442450944, rota: true, wwn: null, serial: null, vendor: '0x1af4', hctl: null, type: 'disk' },
        { kname: 'zram0', size: 1000, rota: false, type: 'disk' },
        { kname: 'sr0', size: 1000, rota: true, type: 'rom' },
      ] });
    }
    if (command === 'ipmitool') return 'IP Address Source       : Static Address\nIP Address              : 10.0.0.5\n';
    return null;
  }
}

describe('inventory collector', () => {
  it('produces the ironic-python-agent shape from a fake root and matches the fixture', async () => {
    const dir = tempDir('inv');
    try {
      fakeMachine(dir.path);
      const inv = await collectInventory({ sources: new FakeRootSources({ root: dir.path }), architecture: 'x86_64', ipv4: () => '172.22.0.43' });
      const fixture = JSON.parse(readFileSync(join(INVENTORIES, 'metal3-kvm-vm-introspection-data.json'), 'utf8')).inventory;
      expect(inv.cpu).toEqual({ model_name: fixture.cpu.model_name, frequency: fixture.cpu.frequency, count: 2, architecture: 'x86_64', flags: ['fpu', 'vme', 'sse2', 'vmx'] });
      expect(inv.memory).toEqual({ total: 6109632 * 1024, physical_mb: 6144 });
      expect(inv.memory!.physical_mb).toBe(fixture.memory.physical_mb);
      expect(inv.disks).toEqual([
        { name: '/dev/vda', model: null, size: 53687091200, rotational: true, wwn: null, serial: null, vendor: '0x1af4', hctl: null, by_path: '/dev/disk/by-path/pci-0000:00:05.0' },
        { name: '/dev/vdb', model: null, size: 6442450944, rotational: true, wwn: null, serial: 'lab-d1', vendor: '0x1af4', hctl: null, by_path: null },
      ]);
      expect(inv.interfaces).toEqual([{ name: 'eth0', mac_address: '00:ca:ff:65:6e:68', ipv4_address: '172.22.0.43', has_carrier: true, speed_mbps: 1000, vendor: '0x1af4', product: '0x0001' }]);
      expect(inv.system_vendor).toEqual({ product_name: 'KVM', serial_number: null, manufacturer: 'Red Hat' });
      expect(inv.boot).toEqual({ current_boot_mode: 'uefi', pxe_interface: fixture.boot.pxe_interface });
      expect(inv.bmc_address).toBe('10.0.0.5');
      expect(inv.hostname).toBe('compute-0');
      expect(inv.schema).toBe('osp.inventory/v1');
      // Every field we emit per section is one the IPA fixture has too (plus speed_mbps, IPA's newer field).
      for (const section of ['cpu', 'memory', 'system_vendor', 'boot'] as const) {
        for (const key of Object.keys(inv[section]!)) expect(Object.keys(fixture[section]), `${section}.${key}`).toContain(key);
      }
      for (const key of Object.keys(inv.disks![0])) expect(Object.keys(fixture.disks[0]), `disks.${key}`).toContain(key);
      for (const key of Object.keys(inv.interfaces![0]).filter((k) => k !== 'speed_mbps')) expect(Object.keys(fixture.interfaces[0]), `interfaces.${key}`).toContain(key);
    } finally {
      dir.remove();
    }
  });

  it('an empty root gives absent fields, not a crash', async () => {
    const dir = tempDir('inv-empty');
    try {
      const inv = await collectInventory({ root: dir.path, architecture: 'x86_64' });
      expect(inv).toEqual({ schema: 'osp.inventory/v1', boot: { current_boot_mode: 'bios', pxe_interface: null } });
    } finally {
      dir.remove();
    }
  });

  it('collects this host with its real lsblk and /proc', async () => {
    const inv = await collectInventory();
    expect(inv.cpu!.count).toBeGreaterThan(0);
    expect(inv.memory!.total).toBeGreaterThan(0);
    expect(Array.isArray(inv.disks)).toBe(true);
  });
});

describe('host metrics collector', () => {
  it('reads /proc from a fake root into flat Prometheus-style keys', async () => {
    const dir = tempDir('metrics');
    try {
      write(dir.path, 'proc/stat', 'cpu  1000 20 300 40000 50 0 6 0 0 0\ncpu0 500 10 150 20000 25 0 3 0 0 0\n');
      write(dir.path, 'proc/loadavg', '0.50 0.25 0.10 1/100 1234\n');
      write(dir.path, 'proc/meminfo', 'MemTotal: 1000 kB\nMemAvailable: 400 kB\nMemFree: 100 kB\n');
      write(dir.path, 'proc/uptime', '1234.56 999.00\n');
      write(dir.path, 'proc/net/dev', 'Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n');
      write(dir.path, 'proc/mounts', `/dev/vda1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n`);
      const m = await new HostMetricsCollector({ root: dir.path, now: () => 42 }).collect();
      expect(m.ts).toBe(42);
      expect(m['cpu_seconds_total{mode="user"}']).toBe(10);
      expect(m['cpu_seconds_total{mode="idle"}']).toBe(400);
      expect(m.load1).toBe(0.5);
      expect(m.memory_total_bytes).toBe(1024000);
      expect(m.memory_available_bytes).toBe(409600);
      expect(m.uptime_seconds).toBe(1234.56);
      expect(m['network_receive_bytes_total{device="eth0"}']).toBe(1000);
      expect(m['network_transmit_bytes_total{device="eth0"}']).toBe(2000);
      expect(m).not.toHaveProperty('network_receive_bytes_total{device="lo"}');
      expect(m['filesystem_free_bytes{mount="/"}']).toBeGreaterThan(0);
      expect(Object.values(m).every((v) => typeof v === 'number' && Number.isFinite(v))).toBe(true);
    } finally {
      dir.remove();
    }
  });
});
