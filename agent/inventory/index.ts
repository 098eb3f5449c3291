import { arch, networkInterfaces } from 'node:os';
import { HostSources, type HostSourcesOptions, type InventorySources } from './sources.js';
import {
  INVENTORY_SCHEMA, collectBmcAddress, collectBoot, collectCpu, collectDisks, collectInterfaces, collectMemory, collectSystemVendor,
  type Inventory,
} from './collect.js';

export { INVENTORY_SCHEMA, HostSources, type Inventory, type InventorySources, type HostSourcesOptions };

export interface CollectInventoryOptions extends HostSourcesOptions {
  sources?: InventorySources;
  /** Defaults to the running kernel's; tests with a fake root pass their own. */
  architecture?: string;
  ipv4?: (name: string) => string | null;
}

const NODE_ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le', s390x: 's390x' };

function hostIpv4(name: string): string | null {
  return networkInterfaces()[name]?.find((a) => a.family === 'IPv4')?.address ?? null;
}

/** Collects every section concurrently; a section whose source is missing is left out. */
export async function collectInventory(opts: CollectInventoryOptions = {}): Promise<Inventory> {
  const src = opts.sources ?? new HostSources(opts);
  const isHost = (opts.root ?? '/') === '/';
  const ipv4 = opts.ipv4 ?? (isHost ? hostIpv4 : () => null);
  const architecture = opts.architecture ?? NODE_ARCH[arch()] ?? arch();
  const [cpu, memory, disks, interfaces, systemVendor, boot, bmc, hostname] = await Promise.all([
    collectCpu(src, architecture), collectMemory(src), collectDisks(src), collectInterfaces(src, ipv4),
    collectSystemVendor(src), collectBoot(src), collectBmcAddress(src), src.readText('proc/sys/kernel/hostname'),
  ]);
  const inv: Inventory = { schema: INVENTORY_SCHEMA };
  if (cpu) inv.cpu = cpu;
  if (memory) inv.memory = memory;
  if (disks) inv.disks = disks;
  if (interfaces) inv.interfaces = interfaces;
  if (systemVendor) inv.system_vendor = systemVendor;
  if (boot) inv.boot = boot;
  if (bmc) inv.bmc_address = bmc;
  if (hostname?.trim()) inv.hostname = hostname.trim();
  return inv;
}
