import type { Queryable, SqlParam } from './db.js';

export interface ServerClaimRow {
  id: string;
  nodeUuid: string;
  /** `<stack row id>/<resource name>`: the server resource that holds the node. */
  owner: string;
  /** For operators: `overcloud/Compute/0` and the resource name. */
  stackPath: string;
  resource: string;
  createdAt: string;
}

interface RawClaim {
  id: string;
  node_uuid: string;
  owner: string;
  stack_path: string;
  resource: string;
  created_at: string;
}

/** Capabilities a node must have, as key → value (`profile` → `compute`). */
export type CapabilityMatch = Record<string, string>;

const fromRow = (r: RawClaim): ServerClaimRow => ({
  id: r.id, nodeUuid: r.node_uuid, owner: r.owner, stackPath: r.stack_path, resource: r.resource, createdAt: r.created_at,
});

/**
 * SQL for "has every wanted capability". Keys are checked by the caller
 * (server-properties.ts) to be plain words, so quoting them into a JSON path is safe.
 */
function matching(want: CapabilityMatch): { sql: string; params: SqlParam[] } {
  const keys = Object.keys(want).sort();
  if (keys.length === 0) return { sql: '1', params: [] };
  return {
    sql: keys.map((k) => `json_extract(n.capabilities, '$."${k}"') = ?`).join(' AND '),
    params: keys.map((k) => want[k]),
  };
}

const FREE = `n.provision_state = 'available' AND n.maintenance = 0`;
const UNCLAIMED = `NOT EXISTS (SELECT 1 FROM server_claims c WHERE c.node_uuid = n.uuid)`;

/** All SQL about server claims; callers wrap claim-taking in one transaction. */
export const serverClaimStore = {
  async byOwner(q: Queryable, owner: string): Promise<ServerClaimRow | undefined> {
    const r = await q.get<RawClaim>('SELECT * FROM server_claims WHERE owner = ?', [owner]);
    return r && fromRow(r);
  },

  async byId(q: Queryable, id: string): Promise<ServerClaimRow | undefined> {
    const r = await q.get<RawClaim>('SELECT * FROM server_claims WHERE id = ?', [id]);
    return r && fromRow(r);
  },

  async byNode(q: Queryable, nodeUuid: string): Promise<ServerClaimRow | undefined> {
    const r = await q.get<RawClaim>('SELECT * FROM server_claims WHERE node_uuid = ?', [nodeUuid]);
    return r && fromRow(r);
  },

  /** The first free, unclaimed node with the capabilities, by name (a stable choice an operator can predict). */
  async firstFree(q: Queryable, want: CapabilityMatch): Promise<string | undefined> {
    const m = matching(want);
    const r = await q.get<{ uuid: string }>(`SELECT n.uuid FROM nodes n WHERE ${FREE} AND ${UNCLAIMED} AND ${m.sql} ORDER BY n.name LIMIT 1`, m.params);
    return r?.uuid;
  },

  /** For the "no matching node" message: free nodes with and without the capabilities, and matching ones other servers hold. */
  async counts(q: Queryable, want: CapabilityMatch): Promise<{ freeWith: number; freeWithout: number; claimedWith: number }> {
    const m = matching(want);
    const r = await q.get<{ free_with: number | null; free_without: number | null; claimed_with: number | null }>(
      `SELECT
         sum(CASE WHEN ${FREE} AND ${UNCLAIMED} AND (${m.sql}) THEN 1 ELSE 0 END) AS free_with,
         sum(CASE WHEN ${FREE} AND ${UNCLAIMED} AND NOT coalesce((${m.sql}), 0) THEN 1 ELSE 0 END) AS free_without,
         sum(CASE WHEN NOT ${UNCLAIMED} AND (${m.sql}) THEN 1 ELSE 0 END) AS claimed_with
       FROM nodes n`, [...m.params, ...m.params, ...m.params]);
    return { freeWith: r?.free_with ?? 0, freeWithout: r?.free_without ?? 0, claimedWith: r?.claimed_with ?? 0 };
  },

  async insert(q: Queryable, c: ServerClaimRow): Promise<void> {
    await q.run('INSERT INTO server_claims (id, node_uuid, owner, stack_path, resource, created_at) VALUES (?,?,?,?,?,?)',
      [c.id, c.nodeUuid, c.owner, c.stackPath, c.resource, c.createdAt]);
  },

  async delete(q: Queryable, id: string): Promise<boolean> {
    return (await q.run('DELETE FROM server_claims WHERE id = ?', [id])).changes > 0;
  },
};
