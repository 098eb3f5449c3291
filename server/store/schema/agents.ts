import type { Migration } from '../migrations.js';

/** Node configuration revisions, agent tokens and agents' acknowledgements. */
export const agentMigrations: Migration[] = [
  {
    id: '0100-agent-config',
    sql: `
      CREATE TABLE config_revisions (
        node_uuid TEXT NOT NULL REFERENCES nodes(uuid) ON DELETE CASCADE,
        revision INTEGER NOT NULL,
        content_hash TEXT NOT NULL,
        metadata TEXT NOT NULL,
        deployments TEXT NOT NULL,
        actor TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (node_uuid, revision)
      );
      CREATE TABLE agent_tokens (
        node_uuid TEXT PRIMARY KEY REFERENCES nodes(uuid) ON DELETE CASCADE,
        token_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE config_acks (
        node_uuid TEXT NOT NULL REFERENCES nodes(uuid) ON DELETE CASCADE,
        revision INTEGER NOT NULL,
        status TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        result TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (node_uuid, revision)
      );
    `,
  },
];
