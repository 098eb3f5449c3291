import type { Migration } from '../migrations.js';

/** Nodes, their ports and their event history. */
export const nodeMigrations: Migration[] = [
  {
    id: '0001-nodes',
    sql: `
      CREATE TABLE nodes (
        uuid TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        driver TEXT NOT NULL,
        driver_info TEXT NOT NULL DEFAULT '{}',
        properties TEXT NOT NULL DEFAULT '{}',
        capabilities TEXT NOT NULL DEFAULT '{}',
        root_device TEXT NOT NULL DEFAULT '{}',
        provision_state TEXT NOT NULL DEFAULT 'enroll',
        power_state TEXT NOT NULL DEFAULT 'unknown',
        maintenance INTEGER NOT NULL DEFAULT 0,
        maintenance_reason TEXT NOT NULL DEFAULT '',
        last_error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE ports (
        address TEXT PRIMARY KEY,
        node_uuid TEXT NOT NULL REFERENCES nodes(uuid) ON DELETE CASCADE,
        created_at TEXT NOT NULL
      );
      CREATE INDEX ports_node ON ports(node_uuid);
    `,
  },
  {
    id: '0002-node-events',
    sql: `
      CREATE TABLE node_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        node_uuid TEXT NOT NULL,
        time TEXT NOT NULL,
        type TEXT NOT NULL,
        actor TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX node_events_node ON node_events(node_uuid, id);
      CREATE INDEX nodes_state ON nodes(provision_state);
    `,
  },
  {
    // What a node in a wait state is doing now (Ironic's deploy_step/clean_step, as one line).
    id: '0003-node-current-step',
    sql: `ALTER TABLE nodes ADD COLUMN current_step TEXT NOT NULL DEFAULT ''`,
  },
];
