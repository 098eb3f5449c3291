/**
 * IN-MEMORY implementations of the PXE dependency interfaces, for tests and
 * for running the services without a store. Not persistent: ospd wires the
 * SQLite-backed versions instead.
 */
import type { BootLog, BootLogEntry, Lease, LeaseStore, PxeDirectory, PxeNode } from './types.js';

export class MemoryDirectory implements PxeDirectory {
  private readonly nodes: PxeNode[] = [];

  constructor(nodes: PxeNode[] = []) {
    for (const n of nodes) this.upsert(n);
  }

  upsert(node: PxeNode): void {
    const i = this.nodes.findIndex((n) => n.uuid === node.uuid);
    const copy = { ...node, macs: node.macs.map((m) => m.toLowerCase()) };
    if (i >= 0) this.nodes[i] = copy;
    else this.nodes.push(copy);
  }

  async findByMac(mac: string): Promise<PxeNode | null> {
    const m = mac.toLowerCase();
    return this.nodes.find((n) => n.macs.includes(m)) ?? null;
  }
}

export class MemoryLeaseStore implements LeaseStore {
  private readonly leases = new Map<string, Lease>();

  async list(): Promise<Lease[]> {
    return [...this.leases.values()].map((l) => ({ ...l }));
  }

  async put(lease: Lease): Promise<void> {
    this.leases.set(lease.mac, { ...lease });
  }

  async remove(mac: string): Promise<void> {
    this.leases.delete(mac);
  }
}

export interface TimedBootLogEntry extends BootLogEntry {
  atMs: number;
}

/** Keeps the newest `capacity` entries. */
export class MemoryBootLog implements BootLog {
  readonly entries: TimedBootLogEntry[] = [];

  constructor(private readonly capacity = 10_000) {}

  record(e: BootLogEntry): void {
    this.entries.push({ ...e, atMs: Date.now() });
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  forMac(mac: string): TimedBootLogEntry[] {
    return this.entries.filter((e) => e.mac === mac.toLowerCase()).reverse();
  }
}
