import type { Database, Queryable } from './db.js';
import { nodeStore } from './nodes.js';
import { SecretBox } from '../security/secrets.js';
import { toDriverInfo } from '../bmc/driver-info.js';
import { POWER_FAILURE_FAULT, type PowerEventSink, type PowerSyncEvent, type PowerSyncStore, type SyncNode } from '../bmc/sync.js';
import type { PowerState } from '../bmc/types.js';

interface SyncRow {
  uuid: string;
  name: string;
  driver: string;
  driver_info: string;
  power_state: string;
  power_failures: number;
  maintenance: number;
  fault: string | null;
}

// Ironic does not sync nodes whose credentials were never verified.
const UNSYNCED_STATES = ['enroll', 'verifying'];

/** The actor recorded on events the sync loop writes. */
export const SYNC_ACTOR = 'server';

/** The power columns operator actions write (the sync loop's own writes are in SqlitePowerSyncStore). */
export const powerStore = {
  /** A power state read from the BMC; not an action, so no event. */
  async setPowerState(q: Queryable, uuid: string, state: PowerState, updatedAt: string): Promise<void> {
    await q.run('UPDATE nodes SET power_state = ?, updated_at = ? WHERE uuid = ?', [state, updatedAt, uuid]);
  },

  /** Sets the maintenance fault and starts the consecutive-failure count over. */
  async resetSyncFault(q: Queryable, uuid: string, fault: string | null): Promise<void> {
    await q.run('UPDATE nodes SET fault = ?, power_failures = 0 WHERE uuid = ?', [fault, uuid]);
  },
};

/** SQLite side of the power-state sync: node rows it reads and writes, and its events in node_events. */
export class SqlitePowerSyncStore implements PowerSyncStore, PowerEventSink {
  /** isBusy: an operator action is in flight on the node, so a power change now is expected, not out of band. */
  constructor(private readonly db: Database, private readonly secrets: SecretBox, private readonly isBusy: (uuid: string) => boolean = () => false) {}

  async listSyncable(): Promise<SyncNode[]> {
    const rows = await this.db.all<SyncRow>(
      `SELECT uuid, name, driver, driver_info, power_state, power_failures, maintenance, fault FROM nodes
        WHERE (maintenance = 0 OR fault = ?) AND provision_state NOT IN (${UNSYNCED_STATES.map(() => '?').join(',')})
        ORDER BY name`, [POWER_FAILURE_FAULT, ...UNSYNCED_STATES]);
    const out: SyncNode[] = [];
    for (const r of rows) {
      const sealed = JSON.parse(r.driver_info) as Record<string, string>;
      const plain = Object.fromEntries(Object.entries(sealed).map(([k, v]) => [k, SecretBox.isSealed(v) ? this.secrets.decrypt(v) : v]));
      let driverInfo;
      try {
        driverInfo = toDriverInfo(plain);
      } catch {
        continue; // A malformed record cannot be polled; validation reports it on the next operator action.
      }
      out.push({
        uuid: r.uuid, name: r.name, driver: r.driver, driverInfo,
        powerState: r.power_state === 'on' || r.power_state === 'off' ? r.power_state : undefined,
        consecutiveFailures: r.power_failures, maintenance: r.maintenance === 1, fault: r.fault,
      });
    }
    return out;
  }

  async recordPowerState(uuid: string, state: PowerState): Promise<PowerState | null> {
    return this.db.transaction(async (tx) => {
      const prev = (await tx.get<{ power_state: string }>('SELECT power_state FROM nodes WHERE uuid = ?', [uuid]))?.power_state;
      // A node that failed before and answers now loses the sync's last_error.
      await tx.run(
        `UPDATE nodes SET power_state = ?, last_error = CASE WHEN power_failures > 0 THEN '' ELSE last_error END,
          power_failures = 0, updated_at = CASE WHEN power_state <> ? THEN ? ELSE updated_at END WHERE uuid = ?`,
        [state, state, new Date().toISOString(), uuid]);
      if (this.isBusy(uuid)) return state;
      return prev === 'on' || prev === 'off' ? prev : null;
    });
  }

  async recordFailure(uuid: string, error: string, consecutiveFailures: number): Promise<void> {
    await this.db.run('UPDATE nodes SET power_failures = ?, last_error = ? WHERE uuid = ?', [consecutiveFailures, error, uuid]);
  }

  async setMaintenance(uuid: string, on: boolean, reason: string | null, fault: string | null): Promise<void> {
    await this.db.run('UPDATE nodes SET maintenance = ?, maintenance_reason = ?, fault = ?, updated_at = ? WHERE uuid = ?',
      [on ? 1 : 0, reason ?? '', fault, new Date().toISOString(), uuid]);
  }

  async emit(e: PowerSyncEvent): Promise<void> {
    let message: string;
    let data: Record<string, unknown>;
    switch (e.type) {
      case 'power.changed_out_of_band':
        message = `power changed out of band: ${e.from ?? 'unknown'} → ${e.to}`;
        data = { from: e.from, to: e.to };
        break;
      case 'power.sync_failed':
        message = `power sync failed (${e.consecutiveFailures} in a row): ${e.error}`;
        data = { code: e.code, consecutiveFailures: e.consecutiveFailures, result: 'error' };
        break;
      case 'maintenance.set':
      case 'maintenance.cleared':
        message = `${e.type === 'maintenance.set' ? 'maintenance set' : 'maintenance cleared'} by power sync: ${e.reason}`;
        data = { reason: e.reason, fault: e.type === 'maintenance.set' ? POWER_FAILURE_FAULT : null };
        break;
    }
    await nodeStore.appendEvent(this.db, { nodeUuid: e.uuid, type: e.type, actor: SYNC_ACTOR, message, data });
  }
}
