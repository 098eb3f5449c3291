/** ospd's SQLite PXE store: group commit keeps every write durable before it resolves, and isolates a failing one. */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { SqlitePxeStore } from '../../server/store/pxe.js';
import { silentLogger } from '../../common/logging.js';
import type { Lease } from '../../server/pxe/types.js';

const dirs: string[] = [];
async function open(dir?: string) {
  const d = dir ?? mkdtempSync(join(tmpdir(), 'osp-lease-'));
  if (!dir) dirs.push(d);
  const db = await Database.open(join(d, 'ospd.sqlite'));
  await migrate(db, undefined, silentLogger());
  const commits = { ok: 0, failed: 0 };
  db.onTransaction = (_s, committed) => { if (committed) commits.ok++; else commits.failed++; };
  return { dir: d, db, store: new SqlitePxeStore(db, silentLogger()), commits };
}
const mac = (i: number) => `52:54:00:10:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const lease = (i: number): Lease => ({ mac: mac(i), ipv4Address: `10.9.${i >> 8}.${i & 255}`, expiresAtMs: Date.now() + 3_600_000, state: 'bound' });

afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

describe('SQLite lease store and boot log', () => {
  it('commits a burst of leases and boot steps in a few transactions, each durable when it resolves', async () => {
    const { dir, db, store, commits } = await open();
    const n = 600;
    await Promise.all(Array.from({ length: n }, (_, i) => {
      store.record({ mac: mac(i), service: 'dhcp', event: 'DISCOVER', detail: { i } });
      return store.put(lease(i));
    }));
    expect((await store.list()).length).toBe(n);
    expect(commits.ok).toBeLessThan(20);
    expect((await store.bootLog([mac(7)]))[0]).toMatchObject({ event: 'DISCOVER', detail: { i: 7 } });
    await store.stop();
    await db.close();
    const again = await open(dir);
    expect((await again.store.list()).map((l) => l.mac)).toContain(mac(n - 1));
    await again.db.close();
  });

  it('a write that fails is rejected alone; the rest of its batch commits', async () => {
    const { db, store } = await open();
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) =>
      store.put(i === 4 ? ({ ...lease(i), state: null } as unknown as Lease) : lease(i))));
    expect(results.map((r) => r.status)).toEqual(results.map((_, i) => (i === 4 ? 'rejected' : 'fulfilled')));
    expect(String((results[4] as PromiseRejectedResult).reason)).toMatch(/NOT NULL/);
    expect((await store.list()).map((l) => l.mac).sort()).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9].map(mac).sort());
    await db.close();
  });
});
