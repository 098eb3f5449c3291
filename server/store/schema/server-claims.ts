import type { Migration } from '../migrations.js';

/**
 * Which bare-metal server resource (OS::Osp::Server) holds which node. A
 * table rather than a node field: the claim is the stack's business, not the
 * node's, and two UNIQUE columns make "one node per server, one server per
 * node" the store's rule, not a convention. `owner` is the resource's
 * identity within the stack tree (stack row id + resource name), so a create
 * cut short by a restart finds its own claim again. The claim goes when its
 * node row goes.
 */
export const serverClaimMigrations: Migration[] = [
  {
    id: '0820-server-claims',
    sql: `
      CREATE TABLE server_claims (
        id TEXT PRIMARY KEY,
        node_uuid TEXT NOT NULL UNIQUE REFERENCES nodes(uuid) ON DELETE CASCADE,
        owner TEXT NOT NULL UNIQUE,
        stack_path TEXT NOT NULL,
        resource TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
    `,
  },
];
