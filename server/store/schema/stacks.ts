import type { Migration } from '../migrations.js';

/**
 * Orchestration stacks (issue 12). A nested stack is a row of its own with
 * `parent_id` and a `path` (`top/Group/0`); `root_id` groups a whole tree so
 * its events share one counter and one delete.
 *
 * `request` is sealed JSON (SecretBox): template path (or generated text),
 * environments and parameters, hidden ones included. `files` holds the
 * operator's bundle, sealed too (environment files carry passwords); only top-level
 * stacks have it. `request_version` changes whenever the request does, so an
 * evaluated stack can be cached by it.
 *
 * Resources keep their resolved `properties` (sealed as a whole when a hidden
 * parameter or a secret attribute went into them), their plug-in `data` (the
 * plug-in's secret keys sealed one by one; NULL while create has stored nothing) and
 * `depends_on`, so deletion order never needs the template again.
 */
export const stackMigrations: Migration[] = [
  {
    id: '0800-stacks',
    sql: `
      CREATE TABLE stacks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        parent_id TEXT REFERENCES stacks(id) ON DELETE CASCADE,
        parent_resource TEXT NOT NULL DEFAULT '',
        root_id TEXT NOT NULL,
        action TEXT NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        operation_started_at TEXT NOT NULL,
        actor TEXT NOT NULL DEFAULT '',
        request TEXT NOT NULL,
        request_version INTEGER NOT NULL DEFAULT 1,
        files TEXT NOT NULL DEFAULT '',
        timeout_mins INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE UNIQUE INDEX stacks_top_name ON stacks(name) WHERE parent_id IS NULL;
      CREATE INDEX stacks_root ON stacks(root_id);
      CREATE TABLE stack_resources (
        stack_id TEXT NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        properties TEXT NOT NULL DEFAULT '{}',
        data TEXT,
        physical_id TEXT NOT NULL DEFAULT '',
        depends_on TEXT NOT NULL DEFAULT '[]',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (stack_id, name)
      );
      CREATE TABLE stack_events (
        root_id TEXT NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
        id INTEGER NOT NULL,
        stack_path TEXT NOT NULL,
        resource TEXT NOT NULL,
        physical_id TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL,
        PRIMARY KEY (root_id, id)
      );
    `,
  },
];
