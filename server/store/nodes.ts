import type { Queryable, SqlParam } from './db.js';
import type { NodeRecord, ProvisionState, DriverName } from '../nodes/model.js';

interface NodeRow {
  uuid: string;
  name: string;
  driver: string;
  driver_info: string;
  properties: string;
  capabilities: string;
  root_device: string;
  provision_state: string;
  power_state: string;
  maintenance: number;
  maintenance_reason: string;
  last_error: string;
  current_step: string;
  created_at: string;
  updated_at: string;
  ports: string | null;
}

const SELECT = `SELECT n.*, (SELECT group_concat(address, ',') FROM (SELECT address FROM ports p WHERE p.node_uuid = n.uuid ORDER BY address)) AS ports FROM nodes n`;

function fromRow(r: NodeRow): NodeRecord {
  return {
    uuid: r.uuid,
    name: r.name,
    ports: r.ports ? r.ports.split(',') : [],
    driver: r.driver as DriverName,
    driverInfo: JSON.parse(r.driver_info),
    properties: JSON.parse(r.properties),
    capabilities: JSON.parse(r.capabilities),
    rootDevice: JSON.parse(r.root_device),
    provisionState: r.provision_state as ProvisionState,
    powerState: r.power_state,
    maintenance: r.maintenance === 1,
    maintenanceReason: r.maintenance_reason,
    lastError: r.last_error,
    currentStep: r.current_step,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface NodeFilter {
  provisionState?: string;
  profile?: string;
  maintenance?: boolean;
  driver?: string;
  /** Return names greater than this one (stable paging by name). */
  afterName?: string;
  limit: number;
}

export interface NodeEventInput {
  nodeUuid: string;
  type: string;
  actor: string;
  message: string;
  data?: Record<string, unknown>;
}

export interface NodeEventRow {
  id: number;
  node_uuid: string;
  time: string;
  type: string;
  actor: string;
  message: string;
  data: string;
}

/** All SQL about nodes, ports and node events. Every method takes the connection or transaction to use. */
export const nodeStore = {
  async getByUuid(q: Queryable, uuid: string): Promise<NodeRecord | undefined> {
    const r = await q.get<NodeRow>(`${SELECT} WHERE n.uuid = ?`, [uuid]);
    return r && fromRow(r);
  },

  async getByName(q: Queryable, name: string): Promise<NodeRecord | undefined> {
    const r = await q.get<NodeRow>(`${SELECT} WHERE n.name = ?`, [name]);
    return r && fromRow(r);
  },

  async findByMac(q: Queryable, mac: string): Promise<NodeRecord | undefined> {
    const r = await q.get<NodeRow>(`${SELECT} WHERE n.uuid = (SELECT node_uuid FROM ports WHERE address = ?)`, [mac]);
    return r && fromRow(r);
  },

  /** The node whose driver_info names this BMC address (a discovered machine matched by its BMC). */
  async findByBmcAddress(q: Queryable, address: string): Promise<NodeRecord | undefined> {
    const r = await q.get<NodeRow>(`${SELECT} WHERE n.uuid = (SELECT uuid FROM nodes WHERE json_extract(driver_info, '$.address') = ? LIMIT 1)`, [address]);
    return r && fromRow(r);
  },

  /** Just the uuid: for callers resolving a name per message, without the ports join. */
  async uuidByName(q: Queryable, name: string): Promise<string | undefined> {
    return (await q.get<{ uuid: string }>('SELECT uuid FROM nodes WHERE name = ?', [name]))?.uuid;
  },

  async portOwners(q: Queryable, macs: string[]): Promise<Map<string, string>> {
    if (macs.length === 0) return new Map();
    const rows = await q.all<{ address: string; node_uuid: string }>(
      `SELECT address, node_uuid FROM ports WHERE address IN (${macs.map(() => '?').join(',')})`, macs);
    return new Map(rows.map((r) => [r.address, r.node_uuid]));
  },

  async list(q: Queryable, f: NodeFilter): Promise<NodeRecord[]> {
    const where: string[] = [];
    const params: SqlParam[] = [];
    if (f.provisionState) { where.push('n.provision_state = ?'); params.push(f.provisionState); }
    if (f.driver) { where.push('n.driver = ?'); params.push(f.driver); }
    if (f.maintenance !== undefined) { where.push('n.maintenance = ?'); params.push(f.maintenance ? 1 : 0); }
    if (f.profile) { where.push(`json_extract(n.capabilities, '$.profile') = ?`); params.push(f.profile); }
    if (f.afterName !== undefined) { where.push('n.name > ?'); params.push(f.afterName); }
    const rows = await q.all<NodeRow>(`${SELECT}${where.length ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY n.name LIMIT ?`, [...params, f.limit]);
    return rows.map(fromRow);
  },

  async count(q: Queryable): Promise<number> {
    return (await q.get<{ c: number }>('SELECT count(*) AS c FROM nodes'))!.c;
  },

  async insert(q: Queryable, n: NodeRecord): Promise<void> {
    await q.run(
      `INSERT INTO nodes (uuid, name, driver, driver_info, properties, capabilities, root_device, provision_state, power_state,
        maintenance, maintenance_reason, last_error, current_step, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
      [n.uuid, n.name, n.driver, JSON.stringify(n.driverInfo), JSON.stringify(n.properties), JSON.stringify(n.capabilities),
        JSON.stringify(n.rootDevice), n.provisionState, n.powerState, n.maintenance ? 1 : 0, n.maintenanceReason, n.lastError,
        n.currentStep, n.createdAt, n.updatedAt]);
    await nodeStore.setPorts(q, n.uuid, n.ports, n.createdAt);
  },

  async update(q: Queryable, n: NodeRecord): Promise<void> {
    await q.run(
      `UPDATE nodes SET name=?, driver=?, driver_info=?, properties=?, capabilities=?, root_device=?, provision_state=?, power_state=?,
        maintenance=?, maintenance_reason=?, last_error=?, current_step=?, updated_at=? WHERE uuid=?`,
      [n.name, n.driver, JSON.stringify(n.driverInfo), JSON.stringify(n.properties), JSON.stringify(n.capabilities),
        JSON.stringify(n.rootDevice), n.provisionState, n.powerState, n.maintenance ? 1 : 0, n.maintenanceReason, n.lastError,
        n.currentStep, n.updatedAt, n.uuid]);
    await nodeStore.setPorts(q, n.uuid, n.ports, n.updatedAt);
  },

  /** Only the step line: progress reports must not race a transition's full-row update. */
  async setCurrentStep(q: Queryable, uuid: string, step: string): Promise<void> {
    await q.run('UPDATE nodes SET current_step = ? WHERE uuid = ?', [step.slice(0, 300), uuid]);
  },

  async setPorts(q: Queryable, uuid: string, macs: string[], now: string): Promise<void> {
    await q.run(`DELETE FROM ports WHERE node_uuid = ?${macs.length ? ` AND address NOT IN (${macs.map(() => '?').join(',')})` : ''}`, [uuid, ...macs]);
    for (const m of macs) await q.run('INSERT OR IGNORE INTO ports (address, node_uuid, created_at) VALUES (?, ?, ?)', [m, uuid, now]);
  },

  async delete(q: Queryable, uuid: string): Promise<void> {
    await q.run('DELETE FROM nodes WHERE uuid = ?', [uuid]);
  },

  async appendEvent(q: Queryable, e: NodeEventInput, time = new Date().toISOString()): Promise<number> {
    const r = await q.run('INSERT INTO node_events (node_uuid, time, type, actor, message, data) VALUES (?,?,?,?,?,?)',
      [e.nodeUuid, time, e.type, e.actor, e.message, JSON.stringify(e.data ?? {})]);
    return r.lastID;
  },

  /** The node's latest `provision` event whose data.to is `state`: the transition into it. */
  async lastTransitionInto(q: Queryable, uuid: string, state: string): Promise<Pick<NodeEventRow, 'id' | 'time' | 'data'> | undefined> {
    return q.get<Pick<NodeEventRow, 'id' | 'time' | 'data'>>(
      `SELECT id, time, data FROM node_events WHERE node_uuid = ? AND type = 'provision' AND json_extract(data, '$.to') = ?
       ORDER BY id DESC LIMIT 1`, [uuid, state]);
  },

  /** Events of the given types after event `sinceId`, oldest first. */
  async eventsSince(q: Queryable, uuid: string, sinceId: number, types: string[]): Promise<Pick<NodeEventRow, 'type' | 'message'>[]> {
    if (types.length === 0) return [];
    return q.all<Pick<NodeEventRow, 'type' | 'message'>>(
      `SELECT type, message FROM node_events WHERE node_uuid = ? AND id > ? AND type IN (${types.map(() => '?').join(', ')}) ORDER BY id`,
      [uuid, sinceId, ...types]);
  },

  async hasEventSince(q: Queryable, uuid: string, sinceId: number, type: string): Promise<boolean> {
    return !!(await q.get<{ id: number }>('SELECT id FROM node_events WHERE node_uuid = ? AND id > ? AND type = ? LIMIT 1', [uuid, sinceId, type]));
  },

  /** The id of the node's latest event of this type, 0 when there is none. */
  async lastEventId(q: Queryable, uuid: string, type: string): Promise<number> {
    return (await q.get<{ id: number | null }>('SELECT max(id) AS id FROM node_events WHERE node_uuid = ? AND type = ?', [uuid, type]))?.id ?? 0;
  },

  async listEvents(q: Queryable, uuid: string, limit: number): Promise<NodeEventRow[]> {
    return q.all<NodeEventRow>('SELECT * FROM node_events WHERE node_uuid = ? ORDER BY id DESC LIMIT ?', [uuid, limit]);
  },
};
