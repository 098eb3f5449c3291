/**
 * Narrow interfaces the PXE services depend on. ospd's composition root backs
 * them with the SQLite store; tests use server/pxe/memory.ts.
 */
import type { ProvisionState } from '../nodes/model.js';

export interface PxeNode {
  uuid: string;
  name: string;
  provisionState: ProvisionState;
  /** Lower-case, colon-separated. */
  macs: string[];
  /** A static address for full-mode DHCP; must lie inside the provisioning subnet. */
  ipv4Address?: string;
}

export interface PxeDirectory {
  /** `mac` is lower-case, colon-separated. */
  findByMac(mac: string): Promise<PxeNode | null>;
}

export interface Lease {
  /** Lower-case, colon-separated. */
  mac: string;
  ipv4Address: string;
  /** Epoch milliseconds. */
  expiresAtMs: number;
  hostname?: string;
  /** Only bound leases are persisted; offers and declined addresses live in memory. */
  state: 'bound';
}

export interface LeaseStore {
  list(): Promise<Lease[]>;
  put(lease: Lease): Promise<void>;
  remove(mac: string): Promise<void>;
}

export type PxeServiceName = 'dhcp' | 'tftp' | 'http';

export interface BootLogEntry {
  mac: string;
  service: PxeServiceName;
  event: string;
  detail?: Record<string, unknown>;
}

export interface BootLog {
  record(e: BootLogEntry): void;
}

/** Counters are monotonically increasing for the life of a service instance. */
export type Counters = Record<string, number>;

export interface PxeServiceStatus {
  service: PxeServiceName;
  running: boolean;
  listen?: string;
  counters: Counters;
  [extra: string]: unknown;
}
