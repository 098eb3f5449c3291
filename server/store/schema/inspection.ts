import type { Migration } from '../migrations.js';

/**
 * Inspection rules (issue 8), in ironic-inspector's v1 shape. `position`
 * keeps import order, which is the order rules run in (inspector runs them
 * by creation time). `body` is the rule's conditions and actions as JSON,
 * with secret attribute values sealed.
 */
export const inspectionMigrations: Migration[] = [
  {
    id: '0500-inspection-rules',
    sql: `
      CREATE TABLE inspection_rules (
        uuid TEXT PRIMARY KEY,
        position INTEGER NOT NULL UNIQUE,
        description TEXT NOT NULL,
        scope TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
    `,
  },
];
