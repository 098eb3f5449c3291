import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Database } from '../../server/store/db.js';
import { migrate, migrations } from '../../server/store/migrations.js';

const made: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'osp-db-'));
  made.push(d);
  return path.join(d, 'ospd.sqlite');
};
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

describe('schema migrations', () => {
  it('upgrades a database made by an older schema without losing rows', async () => {
    const file = tmp();
    const old = await Database.open(file);
    expect(await migrate(old, migrations.slice(0, 1))).toEqual(['0001-nodes']);
    await old.run(`INSERT INTO nodes (uuid, name, driver, created_at, updated_at) VALUES ('u-1', 'old-node', 'ipmi', 't', 't')`);
    await old.run(`INSERT INTO ports (address, node_uuid, created_at) VALUES ('52:54:00:00:00:01', 'u-1', 't')`);
    await old.close();

    const db = await Database.open(file);
    const applied = await migrate(db);
    expect(applied).toEqual(migrations.slice(1).map((m) => m.id).sort());
    expect(await db.get<{ name: string }>(`SELECT name FROM nodes WHERE uuid = 'u-1'`)).toEqual({ name: 'old-node' });
    await db.run(`INSERT INTO node_events (node_uuid, time, type, actor, message) VALUES ('u-1', 't', 'x', 'test', 'm')`);
    expect(await migrate(db)).toEqual([]);
    await db.close();
  });

  it('rolls back a migration that fails half-way and records nothing', async () => {
    const db = await Database.open(tmp());
    const broken = [...migrations, { id: '9999-broken', sql: 'CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);' }];
    await expect(migrate(db, broken)).rejects.toThrow(/no_such_table/);
    expect(await db.get(`SELECT name FROM sqlite_master WHERE name = 'half'`)).toBeUndefined();
    expect(await db.get(`SELECT id FROM schema_migrations WHERE id = '9999-broken'`)).toBeUndefined();
    await db.close();
  });

  it('keeps concurrent transactions apart', async () => {
    const db = await Database.open(tmp());
    await db.run('CREATE TABLE t (k TEXT PRIMARY KEY)');
    const ok = db.transaction(async (tx) => {
      await tx.run(`INSERT INTO t VALUES ('a')`);
      // Yield mid-transaction so the other one runs in between.
      await new Promise((r) => setTimeout(r, 20));
      await tx.run(`INSERT INTO t VALUES ('b')`);
    });
    const failing = db.transaction(async (tx) => {
      await tx.run(`INSERT INTO t VALUES ('c')`);
      throw new Error('boom');
    });
    await ok;
    await expect(failing).rejects.toThrow('boom');
    expect((await db.all<{ k: string }>('SELECT k FROM t ORDER BY k')).map((r) => r.k)).toEqual(['a', 'b']);
    await db.close();
  });
});
