// Child process of mqtt-bench.mjs ("persistence" run, mosquitto side): the
// external consumer an operator would put behind mosquitto to do what ospd's
// ingest does, written independently of osp's code but shaped like its
// production sink so the work is equal:
// - the same SQLite pragmas (WAL, foreign keys, synchronous NORMAL, busy
//   timeout 5 s), one writer and one read-only connection;
// - the same tables for what is written: nodes (uuid, unique name) and
//   node_metrics_raw (node_uuid FK, ts_ms, vals JSON) with its two indexes;
// - the same per-message work: parse and check the JSON (a numeric ts, every
//   other field a finite number), look the node's uuid up by name through the
//   reader (cached 30 s), then one autocommit INSERT, writes serialised in
//   arrival order. osp does not batch rows into transactions, so neither does this.
// Env: BENCH_PORT (mosquitto), BENCH_DB (database file), BENCH_NODES (comma-separated names).
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import sqlite3 from 'sqlite3';

const NODE_CACHE_MS = 30_000;
const names = (process.env.BENCH_NODES ?? '').split(',').filter(Boolean);
const file = process.env.BENCH_DB;

const open = (mode) => new Promise((resolve, reject) => {
  const db = new sqlite3.Database(file, mode, (e) => (e ? reject(e) : resolve(db)));
});
const exec = (db, sql) => new Promise((resolve, reject) => db.exec(sql, (e) => (e ? reject(e) : resolve())));
const run = (db, sql, params) => new Promise((resolve, reject) => db.run(sql, params, (e) => (e ? reject(e) : resolve())));
const get = (db, sql, params) => new Promise((resolve, reject) => db.get(sql, params, (e, row) => (e ? reject(e) : resolve(row))));

const writer = await open(sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE);
await exec(writer, 'PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
await exec(writer, `
  CREATE TABLE IF NOT EXISTS nodes (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE);
  CREATE TABLE IF NOT EXISTS node_metrics_raw (
    node_uuid TEXT NOT NULL REFERENCES nodes(uuid) ON DELETE CASCADE,
    ts_ms INTEGER NOT NULL,
    vals TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS node_metrics_raw_node_ts ON node_metrics_raw (node_uuid, ts_ms);
  CREATE INDEX IF NOT EXISTS node_metrics_raw_ts ON node_metrics_raw (ts_ms);
`);
for (const name of names) await run(writer, 'INSERT OR IGNORE INTO nodes (uuid, name) VALUES (?, ?)', [randomUUID(), name]);
const reader = await open(sqlite3.OPEN_READONLY);
await exec(reader, 'PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');

const uuids = new Map();
async function nodeUuid(name) {
  const hit = uuids.get(name);
  if (hit && Date.now() - hit.atMs < NODE_CACHE_MS) return hit.uuid;
  const row = await get(reader, 'SELECT uuid FROM nodes WHERE name = ?', [name]);
  if (!row) throw new Error(`node '${name}' not found`);
  uuids.set(name, { uuid: row.uuid, atMs: Date.now() });
  return row.uuid;
}

let queue = Promise.resolve();
let dropped = 0;
let failed = 0;
function store(topic, payload) {
  const node = topic.split('/')[2];
  let obj;
  try {
    obj = JSON.parse(payload.toString('utf8'));
  } catch {
    dropped++;
    return;
  }
  const ts = obj?.ts;
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts <= 0) return void dropped++;
  const values = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'ts') continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) return void dropped++;
    values[k] = v;
  }
  const write = async () => {
    const uuid = await nodeUuid(node);
    await run(writer, 'INSERT INTO node_metrics_raw (node_uuid, ts_ms, vals) VALUES (?, ?, ?)', [uuid, Math.round(ts), JSON.stringify(values)]);
  };
  queue = queue.then(write, write).catch(() => void failed++);
}

const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${process.env.BENCH_PORT}`, { clientId: 'bench-sqlite-consumer', reconnectPeriod: 0 });
sub.on('message', store);
await sub.subscribeAsync('osp/nodes/+/metrics', { qos: 0 });
process.send({ ready: true });
process.on('message', async (m) => {
  if (m.cmd === 'stats') {
    process.send({ dropped, failed });
  } else if (m.cmd === 'stop') {
    await sub.endAsync(true);
    await queue;
    await new Promise((r) => reader.close(r));
    await new Promise((r) => writer.close(r));
    process.exit(0);
  }
});
