import type { Queryable } from './db.js';

/** An images row as stored; `extents` is JSON. */
export interface ImageRow {
  name: string;
  format: string;
  size_bytes: number;
  sha256: string;
  sha512: string;
  virtual_size_bytes: number;
  allocated_bytes: number;
  raw_sha256: string;
  data_sha256: string;
  extents: string;
  manifest: string;
  created_at: string;
}

export interface DeployTokenRow {
  node_uuid: string;
  image_name: string;
  token_hash: string;
  expires_at_ms: number;
}

/** All SQL about images, the node → image link and deploy tokens. */
export const imageStore = {
  async get(q: Queryable, name: string): Promise<ImageRow | undefined> {
    return q.get<ImageRow>('SELECT * FROM images WHERE name = ?', [name]);
  },

  /** By name (byte order), after `marker` when given. */
  async list(q: Queryable, limit: number, marker: string): Promise<ImageRow[]> {
    return q.all<ImageRow>('SELECT * FROM images WHERE name > ? ORDER BY name LIMIT ?', [marker, limit]);
  },

  async names(q: Queryable): Promise<string[]> {
    return (await q.all<{ name: string }>('SELECT name FROM images ORDER BY name')).map((r) => r.name);
  },

  async insert(q: Queryable, r: ImageRow): Promise<void> {
    await q.run(`INSERT INTO images (name, format, size_bytes, sha256, sha512, virtual_size_bytes, allocated_bytes, raw_sha256, data_sha256, extents, manifest, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [r.name, r.format, r.size_bytes, r.sha256, r.sha512, r.virtual_size_bytes, r.allocated_bytes, r.raw_sha256, r.data_sha256, r.extents, r.manifest, r.created_at]);
  },

  async withoutDataDigest(q: Queryable): Promise<Pick<ImageRow, 'name' | 'extents'>[]> {
    return q.all("SELECT name, extents FROM images WHERE data_sha256 = '' ORDER BY name");
  },

  async setDataDigest(q: Queryable, name: string, dataSha256: string): Promise<void> {
    await q.run('UPDATE images SET data_sha256 = ? WHERE name = ?', [dataSha256, name]);
  },

  /** False when there was no such image. */
  async delete(q: Queryable, name: string): Promise<boolean> {
    return (await q.run('DELETE FROM images WHERE name = ?', [name])).changes > 0;
  },

  /** Names of the nodes in one of `states` linked to the image, sorted. */
  async usedBy(q: Queryable, name: string, states: readonly string[]): Promise<string[]> {
    if (!states.length) return [];
    const rows = await q.all<{ name: string }>(
      `SELECT n.name AS name FROM node_images ni JOIN nodes n ON n.uuid = ni.node_uuid
       WHERE ni.image_name = ? AND n.provision_state IN (${states.map(() => '?').join(', ')}) ORDER BY n.name`,
      [name, ...states],
    );
    return rows.map((r) => r.name);
  },

  /** Links a node to the image it is deployed with; null unlinks it. */
  async setNodeImage(q: Queryable, nodeUuid: string, image: string | null, at: string): Promise<void> {
    if (image === null) {
      await q.run('DELETE FROM node_images WHERE node_uuid = ?', [nodeUuid]);
      return;
    }
    await q.run(`INSERT INTO node_images (node_uuid, image_name, set_at) VALUES (?, ?, ?)
      ON CONFLICT (node_uuid) DO UPDATE SET image_name = excluded.image_name, set_at = excluded.set_at`, [nodeUuid, image, at]);
  },

  async nodeImage(q: Queryable, nodeUuid: string): Promise<string | undefined> {
    return (await q.get<{ image_name: string }>('SELECT image_name FROM node_images WHERE node_uuid = ?', [nodeUuid]))?.image_name;
  },

  /** One token per node: a new deploy's token replaces the last one. */
  async putDeployToken(q: Queryable, r: DeployTokenRow, at: string): Promise<void> {
    await q.run(`INSERT INTO deploy_tokens (node_uuid, image_name, token_hash, expires_at_ms, created_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (node_uuid) DO UPDATE SET image_name = excluded.image_name, token_hash = excluded.token_hash,
        expires_at_ms = excluded.expires_at_ms, created_at = excluded.created_at`,
    [r.node_uuid, r.image_name, r.token_hash, r.expires_at_ms, at]);
  },

  async deployTokensFor(q: Queryable, image: string): Promise<DeployTokenRow[]> {
    return q.all<DeployTokenRow>('SELECT node_uuid, image_name, token_hash, expires_at_ms FROM deploy_tokens WHERE image_name = ?', [image]);
  },

  async deleteDeployToken(q: Queryable, nodeUuid: string): Promise<boolean> {
    return (await q.run('DELETE FROM deploy_tokens WHERE node_uuid = ?', [nodeUuid])).changes > 0;
  },

  async deleteExpiredDeployTokens(q: Queryable, nowMs: number): Promise<number> {
    return (await q.run('DELETE FROM deploy_tokens WHERE expires_at_ms <= ?', [nowMs])).changes;
  },
};
