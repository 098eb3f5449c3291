import type { Queryable } from './db.js';

export interface DeploymentDoc {
  id: string;
  name: string;
  group: string;
  config: string;
  inputs: { name: string; value: unknown }[];
  options: Record<string, unknown> | null;
}

export interface RevisionRow {
  nodeUuid: string;
  revision: number;
  contentHash: string;
  metadata: Record<string, unknown>;
  deployments: DeploymentDoc[];
  actor: string;
  createdAt: string;
}

export interface AckRow {
  revision: number;
  status: string;
  configHash: string;
  result: { phases: unknown[]; deployments: unknown[]; startedAt?: string; finishedAt?: string };
  receivedAt: string;
}

interface RawRevision {
  node_uuid: string;
  revision: number;
  content_hash: string;
  metadata: string;
  deployments: string;
  actor: string;
  created_at: string;
}

const toRevision = (r: RawRevision): RevisionRow => ({
  nodeUuid: r.node_uuid, revision: r.revision, contentHash: r.content_hash, metadata: JSON.parse(r.metadata),
  deployments: JSON.parse(r.deployments), actor: r.actor, createdAt: r.created_at,
});

interface RawAck {
  revision: number;
  status: string;
  config_hash: string;
  result: string;
  received_at: string;
}

const toAck = (r: RawAck): AckRow => ({ revision: r.revision, status: r.status, configHash: r.config_hash, result: JSON.parse(r.result), receivedAt: r.received_at });

/** All SQL about config revisions, agent tokens and acknowledgements. */
export const configStore = {
  async latest(q: Queryable, nodeUuid: string): Promise<RevisionRow | undefined> {
    const r = await q.get<RawRevision>('SELECT * FROM config_revisions WHERE node_uuid = ? ORDER BY revision DESC LIMIT 1', [nodeUuid]);
    return r && toRevision(r);
  },

  async at(q: Queryable, nodeUuid: string, revision: number): Promise<RevisionRow | undefined> {
    const r = await q.get<RawRevision>('SELECT * FROM config_revisions WHERE node_uuid = ? AND revision = ?', [nodeUuid, revision]);
    return r && toRevision(r);
  },

  async insert(q: Queryable, r: RevisionRow): Promise<void> {
    await q.run('INSERT INTO config_revisions (node_uuid, revision, content_hash, metadata, deployments, actor, created_at) VALUES (?,?,?,?,?,?,?)',
      [r.nodeUuid, r.revision, r.contentHash, JSON.stringify(r.metadata), JSON.stringify(r.deployments), r.actor, r.createdAt]);
  },

  async tokenHash(q: Queryable, nodeUuid: string): Promise<string | undefined> {
    return (await q.get<{ token_hash: string }>('SELECT token_hash FROM agent_tokens WHERE node_uuid = ?', [nodeUuid]))?.token_hash;
  },

  async setToken(q: Queryable, nodeUuid: string, hash: string, now: string): Promise<void> {
    await q.run('INSERT INTO agent_tokens (node_uuid, token_hash, created_at) VALUES (?,?,?) ON CONFLICT(node_uuid) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at',
      [nodeUuid, hash, now]);
  },

  async deleteToken(q: Queryable, nodeUuid: string): Promise<boolean> {
    return (await q.run('DELETE FROM agent_tokens WHERE node_uuid = ?', [nodeUuid])).changes > 0;
  },

  async putAck(q: Queryable, nodeUuid: string, a: AckRow): Promise<void> {
    await q.run(`INSERT INTO config_acks (node_uuid, revision, status, config_hash, result, received_at) VALUES (?,?,?,?,?,?)
      ON CONFLICT(node_uuid, revision) DO UPDATE SET status = excluded.status, config_hash = excluded.config_hash, result = excluded.result, received_at = excluded.received_at`,
    [nodeUuid, a.revision, a.status, a.configHash, JSON.stringify(a.result), a.receivedAt]);
  },

  /** The node's acknowledgements of revision ≥ minRevision, oldest first: what a software deployment waits on. */
  async acksSince(q: Queryable, nodeUuid: string, minRevision: number): Promise<AckRow[]> {
    const rows = await q.all<RawAck>('SELECT * FROM config_acks WHERE node_uuid = ? AND revision >= ? ORDER BY revision', [nodeUuid, minRevision]);
    return rows.map(toAck);
  },

  /** The node's acknowledgements whose result mentions `text` (a deployment id), newest first. */
  async acksMentioning(q: Queryable, nodeUuid: string, text: string): Promise<AckRow[]> {
    const rows = await q.all<RawAck>('SELECT * FROM config_acks WHERE node_uuid = ? AND instr(result, ?) > 0 ORDER BY revision DESC', [nodeUuid, text]);
    return rows.map(toAck);
  },

  /**
   * Per node: latest revision, newest successfully applied revision, and the
   * newest acknowledgement. Three grouped queries for the whole fleet (or one
   * node), not three per node.
   */
  async summaries(q: Queryable, nodeUuid?: string): Promise<Map<string, ConfigSummary>> {
    const where = nodeUuid ? 'WHERE node_uuid = ?' : '';
    const p = nodeUuid ? [nodeUuid] : [];
    const out = new Map<string, ConfigSummary>();
    const entry = (u: string) => out.get(u) ?? out.set(u, { latestRevision: 0, appliedRevision: 0 }).get(u)!;
    for (const r of await q.all<{ node_uuid: string; r: number }>(`SELECT node_uuid, max(revision) AS r FROM config_revisions ${where} GROUP BY node_uuid`, p)) {
      entry(r.node_uuid).latestRevision = r.r;
    }
    for (const r of await q.all<{ node_uuid: string; r: number }>(
      `SELECT node_uuid, max(revision) AS r FROM config_acks ${where ? `${where} AND` : 'WHERE'} status = 'succeeded' GROUP BY node_uuid`, p)) {
      entry(r.node_uuid).appliedRevision = r.r;
    }
    const acks = await q.all<RawAck & { node_uuid: string }>(
      `SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY node_uuid ORDER BY received_at DESC, revision DESC) AS n FROM config_acks ${where}) WHERE n = 1`, p);
    for (const r of acks) {
      entry(r.node_uuid).lastAck = toAck(r);
    }
    return out;
  },
};

export interface ConfigSummary {
  latestRevision: number;
  appliedRevision: number;
  lastAck?: AckRow;
}
