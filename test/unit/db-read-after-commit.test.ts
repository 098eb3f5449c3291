import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Database } from '../../server/store/db.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-db-read-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Database reads', () => {
  // Found by the stack benchmark: with many resources stepping at once, the
  // reader connection always had one get() statement still open, so its
  // snapshot stayed older than rows the engine had just committed.
  it('see a committed row while other reads keep the reader busy', async () => {
    const db = await Database.open(path.join(dir, 'ospd.sqlite'));
    try {
      await db.run('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
      for (let i = 0; i < 50; i++) await db.run('INSERT INTO t (k, v) VALUES (?, ?)', [`pre-${i}`, i]);
      let busy = true;
      // Each reader issues its next get() as soon as the previous one answers, as 8 stepping resources do.
      const readers = Array.from({ length: 16 }, async () => {
        while (busy) await db.get('SELECT v FROM t WHERE k = ?', ['pre-1']);
      });
      const missed: number[] = [];
      try {
        for (let i = 0; i < 100; i++) {
          await db.transaction((tx) => tx.run('INSERT INTO t (k, v) VALUES (?, ?)', [`new-${i}`, i]));
          if ((await db.get<{ v: number }>('SELECT v FROM t WHERE k = ?', [`new-${i}`])) === undefined) missed.push(i);
        }
      } finally {
        busy = false;
        await Promise.all(readers);
      }
      expect(missed).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
