import type { Migration } from '../migrations.js';

/**
 * Heat software configs (OS::Heat::SoftwareConfig / StructuredConfig). A
 * deployment names its config by id only, as in Heat, so the content lives
 * here until the config resource is deleted. No foreign key to stacks: the
 * config resource owns its row and deletes it itself.
 */
export const softwareConfigMigrations: Migration[] = [
  {
    id: '0810-software-configs',
    sql: `
      CREATE TABLE software_configs (
        id TEXT PRIMARY KEY,
        stack_id TEXT NOT NULL,
        resource_name TEXT NOT NULL,
        type TEXT NOT NULL,
        grp TEXT NOT NULL,
        config TEXT NOT NULL,
        inputs TEXT NOT NULL,
        outputs TEXT NOT NULL,
        options TEXT,
        created_at TEXT NOT NULL
      );
      CREATE INDEX software_configs_stack ON software_configs (stack_id);
    `,
  },
];
