import { POWER_FAILURE_FAULT, type PowerEventSink, type PowerSyncEvent, type PowerSyncStore, type SyncNode } from './sync.js';
import type { PowerState } from './types.js';

/**
 * IN-MEMORY implementation of PowerSyncStore and PowerEventSink, for tests and
 * simulation only; ospd uses the SQLite store.
 */
export class MemoryPowerSyncStore implements PowerSyncStore, PowerEventSink {
  readonly nodes = new Map<string, SyncNode & { maintenanceReason?: string | null; lastError?: string }>();
  readonly events: PowerSyncEvent[] = [];

  add(node: Omit<SyncNode, 'consecutiveFailures' | 'maintenance'> & Partial<SyncNode>): void {
    this.nodes.set(node.uuid, { consecutiveFailures: 0, maintenance: false, ...node });
  }

  async listSyncable(): Promise<SyncNode[]> {
    return [...this.nodes.values()].filter((n) => !n.maintenance || n.fault === POWER_FAILURE_FAULT).map((n) => ({ ...n }));
  }

  async recordPowerState(uuid: string, state: PowerState): Promise<void> {
    const n = this.nodes.get(uuid)!;
    n.powerState = state;
    n.consecutiveFailures = 0;
  }

  async recordFailure(uuid: string, error: string, consecutiveFailures: number): Promise<void> {
    const n = this.nodes.get(uuid)!;
    n.consecutiveFailures = consecutiveFailures;
    n.lastError = error;
  }

  async setMaintenance(uuid: string, on: boolean, reason: string | null, fault: string | null): Promise<void> {
    const n = this.nodes.get(uuid)!;
    n.maintenance = on;
    n.maintenanceReason = reason;
    n.fault = fault;
  }

  emit(event: PowerSyncEvent): void { this.events.push(event); }
}
