import { bootifMac, normaliseMac } from '../../common/mac.js';
import { propertiesBySnakeName } from '../../common/node-properties.js';
import { GIB, chooseRootDisk, type InventoryDisk } from './root-device.js';

/**
 * Node properties from a hardware inventory, as ironic-inspector derives
 * them: cpus, memory_mb, local_gb of the root device, cpu_arch, and the
 * MACs that become ports. Pure.
 */

export interface DerivedProperties {
  cpus?: number;
  memoryMb?: number;
  localGb?: number;
  cpuArch?: string;
  rootDisk?: InventoryDisk;
  /** MACs to create ports for: the PXE interface when known, else every NIC with an address. */
  pxeMacs: string[];
  /** Why a property could not be derived, one line each. */
  notes: string[];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The IPA inventory inside a document: introspection data wraps it in `inventory`, the agent sends it bare. */
export function inventoryOf(doc: Obj): Obj {
  return isObj(doc.inventory) ? doc.inventory : doc;
}

interface InventoryNic { name?: string; mac_address?: string; ipv4_address?: string | null; ipv6_address?: string | null }

export function derivePxeMacs(doc: Obj): string[] {
  const inv = inventoryOf(doc);
  const nics = (Array.isArray(inv.interfaces) ? inv.interfaces : []) as InventoryNic[];
  const macs = nics.map((n) => normaliseMac(n.mac_address)).filter((m): m is string => m !== null);
  const boot = isObj(inv.boot) ? bootifMac(inv.boot.pxe_interface) : null;
  const pxe = boot ?? bootifMac(doc.boot_interface);
  // inspector's add_ports=pxe: only the interface the machine booted from, when that is known.
  if (pxe) return [pxe];
  const addressed = nics.filter((n) => n.ipv4_address || n.ipv6_address).map((n) => normaliseMac(n.mac_address)).filter((m): m is string => m !== null);
  return [...new Set(addressed.length ? addressed : macs)];
}

export function deriveProperties(doc: Obj, rootDeviceHints: Record<string, string> = {}): DerivedProperties {
  const inv = inventoryOf(doc);
  const out: DerivedProperties = { pxeMacs: derivePxeMacs(doc), notes: [] };
  const cpu = isObj(inv.cpu) ? inv.cpu : undefined;
  if (typeof cpu?.count === 'number' && Number.isInteger(cpu.count) && cpu.count > 0) out.cpus = cpu.count;
  else out.notes.push('cpus: the inventory has no cpu.count');
  if (typeof cpu?.architecture === 'string' && cpu.architecture) out.cpuArch = cpu.architecture;
  else out.notes.push('cpu_arch: the inventory has no cpu.architecture');
  const mem = isObj(inv.memory) ? inv.memory : undefined;
  if (typeof mem?.physical_mb === 'number' && mem.physical_mb > 0) out.memoryMb = Math.floor(mem.physical_mb);
  else if (typeof mem?.total === 'number' && mem.total > 0) out.memoryMb = Math.floor(mem.total / 1024 ** 2);
  else out.notes.push('memory_mb: the inventory has no memory.physical_mb or memory.total');
  const disks = (Array.isArray(inv.disks) ? inv.disks : []) as InventoryDisk[];
  const root = chooseRootDisk(disks, rootDeviceHints);
  if (root && typeof root.size === 'number') {
    out.rootDisk = root;
    // inspector keeps 1 GiB back for partitioning (disk_partitioning_spacing).
    out.localGb = Math.max(0, Math.floor(root.size / GIB) - 1);
  } else if (!disks.length) out.notes.push('local_gb: the inventory lists no disks');
  else if (Object.keys(rootDeviceHints).length) out.notes.push(`local_gb: no disk matches the root device hints ${JSON.stringify(rootDeviceHints)}`);
  else out.notes.push('local_gb: no disk of at least 4 GiB');
  return out;
}

/**
 * What rules see under `data://`: the document as sent, with inspector's
 * processed keys (cpus, memory_mb, local_gb, cpu_arch, macs, root_disk,
 * boot_interface) filled in where the document lacks them.
 */
export function introspectionData(doc: Obj, rootDeviceHints: Record<string, string> = {}): Obj {
  const inv = inventoryOf(doc);
  const base: Obj = inv === doc ? { inventory: doc } : { ...doc };
  let d: DerivedProperties;
  try {
    d = deriveProperties(doc, rootDeviceHints);
  } catch {
    // Bad hints are reported by processInventory; rules still see the raw inventory.
    d = deriveProperties(doc, {});
  }
  const fill = (k: string, v: unknown) => {
    if (base[k] === undefined && v !== undefined) base[k] = v;
  };
  for (const [k, v] of Object.entries(propertiesBySnakeName(d))) fill(k, v);
  fill('root_disk', d.rootDisk);
  fill('macs', d.pxeMacs);
  fill('boot_interface', d.pxeMacs.length === 1 ? d.pxeMacs[0] : undefined);
  return base;
}
