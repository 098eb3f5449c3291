import type { Queryable } from './db.js';

/** A stacks row as stored; `request` and `files` are sealed JSON. */
export interface StackRow {
  id: string;
  name: string;
  path: string;
  parent_id: string | null;
  parent_resource: string;
  root_id: string;
  action: string;
  status: string;
  status_reason: string;
  operation_started_at: string;
  actor: string;
  request: string;
  request_version: number;
  files: string;
  timeout_mins: number;
  created_at: string;
  updated_at: string;
}

/** A stack_resources row; `properties` is JSON or a sealed JSON string, `data` JSON or NULL. */
export interface ResourceRow {
  stack_id: string;
  name: string;
  type: string;
  status: string;
  status_reason: string;
  properties: string;
  data: string | null;
  physical_id: string;
  depends_on: string;
  updated_at: string;
}

export interface EventRow {
  root_id: string;
  id: number;
  stack_path: string;
  resource: string;
  physical_id: string;
  status: string;
  status_reason: string;
  at: string;
}

/** The parts of a resource row an operation changes; omitted ones stay as stored. */
export type ResourceChange = Partial<Pick<ResourceRow, 'type' | 'status' | 'status_reason' | 'properties' | 'data' | 'physical_id' | 'depends_on'>>;

/** All SQL about stacks, their resources and events. */
export const stackStore = {
  async byPath(q: Queryable, path: string): Promise<StackRow | undefined> {
    return q.get<StackRow>('SELECT * FROM stacks WHERE path = ?', [path]);
  },

  async byId(q: Queryable, id: string): Promise<StackRow | undefined> {
    return q.get<StackRow>('SELECT * FROM stacks WHERE id = ?', [id]);
  },

  /** Top-level stacks by name (byte order), after `marker`. */
  async listTop(q: Queryable, limit: number, marker: string): Promise<StackRow[]> {
    return q.all<StackRow>('SELECT * FROM stacks WHERE parent_id IS NULL AND name > ? ORDER BY name LIMIT ?', [marker, limit]);
  },

  async inProgressTop(q: Queryable): Promise<StackRow[]> {
    return q.all<StackRow>("SELECT * FROM stacks WHERE parent_id IS NULL AND status LIKE '%_IN_PROGRESS' ORDER BY name");
  },

  /** Every stack of a tree, parents before children. */
  async tree(q: Queryable, rootId: string): Promise<StackRow[]> {
    return q.all<StackRow>('SELECT * FROM stacks WHERE root_id = ? ORDER BY length(path), path', [rootId]);
  },

  async child(q: Queryable, parentId: string, resource: string): Promise<StackRow | undefined> {
    return q.get<StackRow>('SELECT * FROM stacks WHERE parent_id = ? AND parent_resource = ?', [parentId, resource]);
  },

  async insert(q: Queryable, r: StackRow): Promise<void> {
    await q.run(`INSERT INTO stacks (id, name, path, parent_id, parent_resource, root_id, action, status, status_reason, operation_started_at,
      actor, request, request_version, files, timeout_mins, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [r.id, r.name, r.path, r.parent_id, r.parent_resource, r.root_id, r.action, r.status, r.status_reason, r.operation_started_at,
      r.actor, r.request, r.request_version, r.files, r.timeout_mins, r.created_at, r.updated_at]);
  },

  async setStatus(q: Queryable, id: string, action: string, status: string, reason: string, at: string): Promise<void> {
    await q.run('UPDATE stacks SET action = ?, status = ?, status_reason = ?, updated_at = ? WHERE id = ?', [action, status, reason, at, id]);
  },

  /** A new operation: its request (when it changes) and start time. */
  async beginOperation(q: Queryable, id: string, op: { action: string; status: string; reason: string; at: string; actor: string; timeoutMins: number; request?: string; files?: string }): Promise<void> {
    await q.run(`UPDATE stacks SET action = ?, status = ?, status_reason = ?, updated_at = ?, operation_started_at = ?, actor = ?, timeout_mins = ?,
      request = COALESCE(?, request), files = COALESCE(?, files), request_version = request_version + (CASE WHEN ? IS NULL THEN 0 ELSE 1 END) WHERE id = ?`,
    [op.action, op.status, op.reason, op.at, op.at, op.actor, op.timeoutMins, op.request ?? null, op.files ?? null, op.request ?? null, id]);
  },

  async deleteStack(q: Queryable, id: string): Promise<void> {
    await q.run('DELETE FROM stacks WHERE id = ?', [id]);
  },

  async resources(q: Queryable, stackId: string): Promise<ResourceRow[]> {
    return q.all<ResourceRow>('SELECT * FROM stack_resources WHERE stack_id = ? ORDER BY name', [stackId]);
  },

  async resource(q: Queryable, stackId: string, name: string): Promise<ResourceRow | undefined> {
    return q.get<ResourceRow>('SELECT * FROM stack_resources WHERE stack_id = ? AND name = ?', [stackId, name]);
  },

  /** Resources of every stack of a tree, with their stack's path. */
  async treeResources(q: Queryable, rootId: string): Promise<(ResourceRow & { stack_path: string })[]> {
    return q.all<ResourceRow & { stack_path: string }>(`SELECT r.*, s.path AS stack_path FROM stack_resources r JOIN stacks s ON s.id = r.stack_id
      WHERE s.root_id = ? ORDER BY length(s.path), s.path, r.name`, [rootId]);
  },

  async insertResource(q: Queryable, r: ResourceRow): Promise<void> {
    await q.run(`INSERT INTO stack_resources (stack_id, name, type, status, status_reason, properties, data, physical_id, depends_on, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (stack_id, name) DO NOTHING`,
    [r.stack_id, r.name, r.type, r.status, r.status_reason, r.properties, r.data, r.physical_id, r.depends_on, r.updated_at]);
  },

  async updateResource(q: Queryable, stackId: string, name: string, change: ResourceChange, at: string): Promise<void> {
    const keys = Object.keys(change) as (keyof ResourceChange)[];
    const sets = [...keys.map((k) => `${k} = ?`), 'updated_at = ?'];
    await q.run(`UPDATE stack_resources SET ${sets.join(', ')} WHERE stack_id = ? AND name = ?`, [...keys.map((k) => change[k] ?? null), at, stackId, name]);
  },

  async deleteResource(q: Queryable, stackId: string, name: string): Promise<void> {
    await q.run('DELETE FROM stack_resources WHERE stack_id = ? AND name = ?', [stackId, name]);
  },

  /** Appends an event to its tree's sequence; returns its id. */
  async addEvent(q: Queryable, e: Omit<EventRow, 'id'>): Promise<number> {
    const last = await q.get<{ id: number | null }>('SELECT MAX(id) AS id FROM stack_events WHERE root_id = ?', [e.root_id]);
    const id = (last?.id ?? 0) + 1;
    await q.run(`INSERT INTO stack_events (root_id, id, stack_path, resource, physical_id, status, status_reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [e.root_id, id, e.stack_path, e.resource, e.physical_id, e.status, e.status_reason, e.at]);
    return id;
  },

  async events(q: Queryable, rootId: string, after: number, limit: number): Promise<EventRow[]> {
    return q.all<EventRow>('SELECT * FROM stack_events WHERE root_id = ? AND id > ? ORDER BY id LIMIT ?', [rootId, after, limit]);
  },
};
