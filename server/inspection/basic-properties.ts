import type { NodeRegistry } from '../nodes/registry.js';
import type { PatchOp } from '../nodes/patch.js';
import { normaliseMac } from '../nodes/validate.js';

/** What the flow calls with each stored inventory (the rules engine's processInventory has this shape). */
export type InventoryProcessor = (nodeUuid: string, inventory: Record<string, unknown>) => Promise<void>;

// Ironic's default root device: the smallest disk of at least 4 GiB.
const MIN_ROOT_BYTES = 4 * 1024 ** 3;

interface InventoryView {
  cpu?: { count?: number; architecture?: string };
  memory?: { total?: number; physical_mb?: number | null };
  disks?: { name?: string; size?: number }[];
  interfaces?: { mac_address?: string }[];
}

/**
 * Stand-in until server/inspection/process.ts (the rules engine's
 * processInventory) is wired: derives cpus, memory_mb, local_gb and cpu_arch
 * and adds the MACs found as ports. No rules.
 */
export function basicPropertiesProcessor(registry: NodeRegistry): InventoryProcessor {
  return async (nodeUuid, raw) => {
    const inv = raw as InventoryView;
    const ops: PatchOp[] = [];
    if (typeof inv.cpu?.count === 'number' && inv.cpu.count > 0) ops.push({ op: 'add', path: '/properties/cpus', value: String(inv.cpu.count) });
    if (inv.cpu?.architecture) ops.push({ op: 'add', path: '/properties/cpu_arch', value: inv.cpu.architecture });
    const memMb = inv.memory?.physical_mb ?? (inv.memory?.total ? Math.floor(inv.memory.total / 1024 ** 2) : undefined);
    if (memMb) ops.push({ op: 'add', path: '/properties/memory_mb', value: String(memMb) });
    const root = (inv.disks ?? []).filter((d) => (d.size ?? 0) >= MIN_ROOT_BYTES).sort((a, b) => a.size! - b.size!)[0];
    // Ironic reports local_gb one below the disk size, leaving room for the partition table.
    if (root?.size) ops.push({ op: 'add', path: '/properties/local_gb', value: String(Math.max(0, Math.floor(root.size / 1024 ** 3) - 1)) });
    const macs = (inv.interfaces ?? []).map((i) => normaliseMac(i.mac_address ?? '')).filter((m): m is string => !!m);
    if (macs.length) ops.push({ op: 'add', path: '/ports', value: [...new Set(macs)].join(',') });
    if (ops.length) await registry.update(nodeUuid, ops, 'inspection');
  };
}
