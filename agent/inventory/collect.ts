import { bootifMac } from '../../common/mac.js';
import type { InventorySources } from './sources.js';

/**
 * The hardware inventory in ironic-python-agent's field names, so Ironic
 * inspection rules and tooling read it unchanged. Each section comes from its
 * own source; a missing source leaves its fields out instead of failing.
 */

export const INVENTORY_SCHEMA = 'osp.inventory/v1';

export interface Inventory {
  schema: string;
  cpu?: { model_name: string | null; frequency: string | null; count: number; architecture: string; flags: string[] };
  memory?: { total: number; physical_mb: number | null };
  disks?: { name: string; model: string | null; size: number; rotational: boolean; wwn: string | null; serial: string | null; vendor: string | null; hctl: string | null; by_path: string | null }[];
  interfaces?: { name: string; mac_address: string; ipv4_address: string | null; has_carrier: boolean; speed_mbps: number | null; vendor: string | null; product: string | null }[];
  system_vendor?: { product_name: string | null; serial_number: string | null; manufacturer: string | null };
  boot?: { current_boot_mode: 'uefi' | 'bios'; pxe_interface: string | null };
  bmc_address?: string;
  hostname?: string;
}

const trimOrNull = (s: string | null): string | null => {
  const t = s?.trim();
  return t ? t : null;
};

export async function collectCpu(src: InventorySources, arch: string): Promise<Inventory['cpu']> {
  const text = await src.readText('proc/cpuinfo');
  if (!text) return undefined;
  const blocks = text.split(/\n\s*\n/).filter((b) => /^processor\s*:/m.test(b));
  if (blocks.length === 0) return undefined;
  const field = (name: string): string | null => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(blocks[0]);
    return m ? m[1].trim() : null;
  };
  // IPA reports the maximum frequency when cpufreq knows it, else cpuinfo's MHz.
  const maxKHz = trimOrNull(await src.readText('sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq'));
  const frequency = maxKHz ? String(Number(maxKHz) / 1000) : field('cpu MHz');
  return {
    model_name: field('model name'),
    frequency,
    count: blocks.length,
    architecture: arch,
    flags: (field('flags') ?? field('Features') ?? '').split(/\s+/).filter(Boolean),
  };
}

export async function collectMemory(src: InventorySources): Promise<Inventory['memory']> {
  const text = await src.readText('proc/meminfo');
  const m = text ? /^MemTotal:\s+(\d+)\s*kB/m.exec(text) : null;
  if (!m) return undefined;
  const total = Number(m[1]) * 1024;
  let physicalMb: number | null = null;
  // Installed DIMMs (dmidecode type 17) beat MemTotal, which excludes firmware reservations.
  const dmi = await src.run('dmidecode', ['--type', '17']);
  if (dmi) {
    let mb = 0;
    for (const s of dmi.matchAll(/^\s*Size:\s*(\d+)\s*(MB|GB|TB)\s*$/gm)) mb += Number(s[1]) * (s[2] === 'GB' ? 1024 : s[2] === 'TB' ? 1024 * 1024 : 1);
    if (mb > 0) physicalMb = mb;
  }
  if (physicalMb === null) {
    // Sum of online memory blocks, rounded like IPA's fallback.
    const blockHex = trimOrNull(await src.readText('sys/devices/system/memory/block_size_bytes'));
    const blocks = (await src.listDir('sys/devices/system/memory')).filter((d) => d.startsWith('memory'));
    if (blockHex && blocks.length) {
      let online = 0;
      for (const b of blocks) if (trimOrNull(await src.readText(`sys/devices/system/memory/${b}/online`)) === '1') online++;
      if (online > 0) physicalMb = (online * parseInt(blockHex, 16)) / (1024 * 1024);
    }
  }
  return { total, physical_mb: physicalMb };
}

interface LsblkDevice {
  name?: string; kname?: string; model?: string | null; size?: number | string; rota?: boolean | string | null; wwn?: string | null;
  serial?: string | null; vendor?: string | null; hctl?: string | null; type?: string;
}

export async function collectDisks(src: InventorySources): Promise<Inventory['disks']> {
  const out = await src.run('lsblk', ['--json', '--bytes', '--nodeps', '--output', 'KNAME,MODEL,SIZE,ROTA,WWN,SERIAL,VENDOR,HCTL,TYPE']);
  if (!out) return undefined;
  let devices: LsblkDevice[];
  try {
    devices = (JSON.parse(out) as { blockdevices?: LsblkDevice[] }).blockdevices ?? [];
  } catch {
    return undefined;
  }
  const byPath = new Map<string, string>();
  for (const link of await src.listDir('dev/disk/by-path')) {
    const target = await src.readLink(`dev/disk/by-path/${link}`);
    const kname = target?.split('/').pop();
    if (kname && !byPath.has(kname)) byPath.set(kname, `/dev/disk/by-path/${link}`);
  }
  // lsblk takes SERIAL from udev's database; the ramdisk runs no udev, so the kernel's own copy
  // (virtio-blk: block/X/serial, SCSI and NVMe: block/X/device/serial) is what root device hints can match.
  const sysfsSerial = async (kname: string): Promise<string | null> =>
    trimOrNull(await src.readText(`sys/block/${kname}/serial`)) ?? trimOrNull(await src.readText(`sys/block/${kname}/device/serial`));
  const disks = devices
    // Virtual RAM-backed and empty devices are no install target (IPA skips them too).
    .filter((d) => d.type === 'disk' && d.kname && !/^(zram|ram|loop)\d/.test(d.kname) && Number(d.size ?? 0) > 0);
  return Promise.all(disks.map(async (d) => ({
    name: `/dev/${d.kname}`,
    model: trimOrNull(d.model ?? null),
    size: Number(d.size ?? 0),
    rotational: d.rota === true || d.rota === '1',
    wwn: trimOrNull(d.wwn ?? null),
    serial: trimOrNull(d.serial ?? null) ?? await sysfsSerial(d.kname as string),
    vendor: trimOrNull(d.vendor ?? null),
    hctl: trimOrNull(d.hctl ?? null),
    by_path: byPath.get(d.kname as string) ?? null,
  })));
}

export async function collectInterfaces(src: InventorySources, ipv4: (name: string) => string | null): Promise<Inventory['interfaces']> {
  const names = await src.listDir('sys/class/net');
  if (names.length === 0) return undefined;
  const out: NonNullable<Inventory['interfaces']> = [];
  for (const name of names) {
    const base = `sys/class/net/${name}`;
    // Physical NICs only, like IPA: they have a backing device.
    if (name === 'lo' || !(await src.exists(`${base}/device`))) continue;
    const mac = trimOrNull(await src.readText(`${base}/address`));
    if (!mac) continue;
    const speed = Number(trimOrNull(await src.readText(`${base}/speed`)));
    out.push({
      name,
      mac_address: mac,
      ipv4_address: ipv4(name),
      has_carrier: trimOrNull(await src.readText(`${base}/carrier`)) === '1',
      speed_mbps: Number.isFinite(speed) && speed > 0 ? speed : null,
      vendor: trimOrNull(await src.readText(`${base}/device/vendor`)),
      product: trimOrNull(await src.readText(`${base}/device/device`)),
    });
  }
  return out;
}

export async function collectSystemVendor(src: InventorySources): Promise<Inventory['system_vendor']> {
  const [product, serial, vendor] = await Promise.all(
    ['product_name', 'product_serial', 'sys_vendor'].map(async (f) => trimOrNull(await src.readText(`sys/class/dmi/id/${f}`))),
  );
  if (product === null && serial === null && vendor === null) return undefined;
  return { product_name: product, serial_number: serial, manufacturer: vendor };
}

/** BOOTIF=01-aa-bb-cc-dd-ee-ff on the kernel command line is how PXELINUX/iPXE name the boot NIC. */
export async function collectBoot(src: InventorySources): Promise<Inventory['boot']> {
  const uefi = await src.exists('sys/firmware/efi');
  const cmdline = (await src.readText('proc/cmdline')) ?? '';
  const m = /(?:^|\s)BOOTIF=(\S+)/.exec(cmdline);
  return { current_boot_mode: uefi ? 'uefi' : 'bios', pxe_interface: m ? bootifMac(m[1]) : null };
}

export async function collectBmcAddress(src: InventorySources): Promise<string | undefined> {
  const out = await src.run('ipmitool', ['lan', 'print']);
  const m = out ? /^IP Address\s*:\s*(\S+)/m.exec(out) : null;
  return m ? m[1] : undefined;
}
