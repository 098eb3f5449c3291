import type { Migration } from '../migrations.js';

/**
 * Images in ospd (issue 11). `images` holds one row per stored image: the
 * uploaded file's digests and the sparse raw file's facts (`extents` is JSON
 * `[{start, length, data}]`). `node_images` says which image a node is
 * deployed with (written by the deploy flow); delete consults it together
 * with the node's provision state. `deploy_tokens` keeps per-deploy bearer
 * tokens for the image download route, hashed, one per node.
 */
export const imageMigrations: Migration[] = [
  {
    id: '0600-images',
    sql: `
      CREATE TABLE images (
        name TEXT PRIMARY KEY,
        format TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        sha512 TEXT NOT NULL,
        virtual_size_bytes INTEGER NOT NULL,
        allocated_bytes INTEGER NOT NULL,
        raw_sha256 TEXT NOT NULL,
        extents TEXT NOT NULL,
        manifest TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
      );
      CREATE TABLE node_images (
        node_uuid TEXT PRIMARY KEY REFERENCES nodes(uuid) ON DELETE CASCADE,
        image_name TEXT NOT NULL,
        set_at TEXT NOT NULL
      );
      CREATE INDEX node_images_image ON node_images(image_name);
      CREATE TABLE deploy_tokens (
        node_uuid TEXT PRIMARY KEY REFERENCES nodes(uuid) ON DELETE CASCADE,
        image_name TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX deploy_tokens_image ON deploy_tokens(image_name);
    `,
  },
  {
    // The deploy verifies only what it fetches: the data extents' bytes, in order (empty: computed at start from the raw file).
    id: '0601-image-data-sha256',
    sql: `ALTER TABLE images ADD COLUMN data_sha256 TEXT NOT NULL DEFAULT ''`,
  },
];
