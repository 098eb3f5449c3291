import sqlite3 from 'sqlite3';
import type { Logger } from '../../common/logging.js';

export type SqlParam = string | number | bigint | null | Buffer | boolean;

/** What a query needs: the same calls inside and outside a transaction. */
export interface Queryable {
  run(sql: string, params?: SqlParam[]): Promise<{ changes: number; lastID: number }>;
  get<T>(sql: string, params?: SqlParam[]): Promise<T | undefined>;
  all<T>(sql: string, params?: SqlParam[]): Promise<T[]>;
}

function open(file: string, mode: number): Promise<sqlite3.Database> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, mode, (err) => (err ? reject(err) : resolve(db)));
  });
}

function wrap(db: sqlite3.Database): Queryable {
  return {
    run: (sql, params = []) =>
      new Promise((resolve, reject) => {
        db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
          if (err) reject(err);
          else resolve({ changes: this.changes, lastID: this.lastID });
        });
      }),
    // Not sqlite3's get: it steps once and leaves the statement open until its finalize runs later,
    // so under a steady stream of reads one statement is always open, the reader's snapshot never
    // moves on, and a row committed moments ago stays invisible. all() steps to the end, which closes it.
    get: <T>(sql: string, params: SqlParam[] = []) =>
      new Promise<T | undefined>((resolve, reject) => {
        db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows[0] as T | undefined)));
      }),
    all: <T>(sql: string, params: SqlParam[] = []) =>
      new Promise<T[]>((resolve, reject) => {
        db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows as T[])));
      }),
  };
}

function exec(db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.exec(sql, (err) => (err ? reject(err) : resolve())));
}

/**
 * SQLite with one writer connection and one reader connection (WAL lets the
 * reader see committed data while a write transaction is open).
 *
 * Every write goes through one queue: sqlite3's connection has no notion of
 * whose statement belongs to which transaction, so two interleaved async
 * transactions on one connection would silently merge. Serialising them is
 * what makes "one transaction" true.
 */
export class Database implements Queryable {
  private queue: Promise<unknown> = Promise.resolve();
  /** Told how long each transaction took (queueing excluded) and whether it committed; for /metrics. */
  onTransaction?: (seconds: number, committed: boolean) => void;
  private readonly writer: Queryable;
  private readonly reader: Queryable;

  private constructor(
    private readonly writerDb: sqlite3.Database,
    private readonly readerDb: sqlite3.Database,
    readonly file: string,
    private readonly log?: Logger,
  ) {
    this.writer = wrap(writerDb);
    this.reader = wrap(readerDb);
  }

  static async open(file: string, log?: Logger): Promise<Database> {
    const w = await open(file, sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE);
    await exec(w, 'PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    const r = await open(file, sqlite3.OPEN_READONLY);
    await exec(r, 'PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
    return new Database(w, r, file, log);
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  run(sql: string, params?: SqlParam[]) {
    return this.serialise(() => this.writer.run(sql, params));
  }

  get<T>(sql: string, params?: SqlParam[]) {
    return this.reader.get<T>(sql, params);
  }

  all<T>(sql: string, params?: SqlParam[]) {
    return this.reader.all<T>(sql, params);
  }

  /** Runs fn in BEGIN IMMEDIATE … COMMIT; any throw rolls everything back. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.serialise(async () => {
      const started = process.hrtime.bigint();
      const took = () => Number(process.hrtime.bigint() - started) / 1e9;
      await exec(this.writerDb, 'BEGIN IMMEDIATE');
      try {
        const result = await fn(this.writer);
        await exec(this.writerDb, 'COMMIT');
        this.onTransaction?.(took(), true);
        return result;
      } catch (e) {
        await exec(this.writerDb, 'ROLLBACK').catch((re) => this.log?.error({ err: re }, 'rollback failed'));
        this.onTransaction?.(took(), false);
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    await this.queue;
    await new Promise<void>((resolve, reject) => this.readerDb.close((e) => (e ? reject(e) : resolve())));
    await new Promise<void>((resolve, reject) => this.writerDb.close((e) => (e ? reject(e) : resolve())));
  }
}
