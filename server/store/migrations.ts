import type { Database } from './db.js';
import type { Logger } from '../../common/logging.js';
import { nodeMigrations } from './schema/nodes.js';
import { bmcMigrations } from './schema/bmc.js';
import { agentMigrations } from './schema/agents.js';
import { telemetryMigrations } from './schema/telemetry.js';
import { pxeMigrations } from './schema/pxe.js';
import { inspectionMigrations } from './schema/inspection.js';
import { imageMigrations } from './schema/images.js';
import { stackMigrations } from './schema/stacks.js';
import { softwareConfigMigrations } from './schema/software-configs.js';
import { serverClaimMigrations } from './schema/server-claims.js';

export interface Migration {
  /** Stable, unique, sorts in application order: "NNNN-feature-what". */
  id: string;
  sql: string;
}

/**
 * Schema history. Applied in id order, each in its own transaction, and
 * recorded by id (not by a counter) so features developed side by side can
 * each add theirs. Each feature keeps its migrations in schema/<feature>.ts.
 * Never edit an applied migration: add a new one.
 */
export const migrations: Migration[] = [
  ...nodeMigrations,
  ...bmcMigrations,
  ...agentMigrations,
  ...telemetryMigrations,
  ...pxeMigrations,
  ...inspectionMigrations,
  ...imageMigrations,
  ...stackMigrations,
  ...softwareConfigMigrations,
  ...serverClaimMigrations,
];

export async function migrate(db: Database, list: Migration[] = migrations, log?: Logger): Promise<string[]> {
  await db.run(`CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)`);
  const done = new Set((await db.all<{ id: string }>('SELECT id FROM schema_migrations')).map((r) => r.id));
  const ids = list.map((m) => m.id);
  if (new Set(ids).size !== ids.length) throw new Error('duplicate migration id');
  const applied: string[] = [];
  for (const m of [...list].sort((a, b) => a.id.localeCompare(b.id))) {
    if (done.has(m.id)) continue;
    await db.transaction(async (tx) => {
      for (const stmt of splitStatements(m.sql)) await tx.run(stmt);
      await tx.run('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)', [m.id, new Date().toISOString()]);
    });
    log?.info({ migration: m.id }, 'schema migration applied');
    applied.push(m.id);
  }
  return applied;
}

// Statements inside a transaction must go one at a time through run();
// the migrations are ours, so a plain split on ';' at line ends is enough.
function splitStatements(sql: string): string[] {
  return sql.split(/;\s*(?:\n|$)/).map((s) => s.trim()).filter(Boolean);
}
