import type { Migration } from '../migrations.js';

/**
 * Telemetry (issue 6): MQTT consumer accounts, the latest inventory and
 * availability per node, and node metrics (raw samples, then per-minute
 * averages). Metric values are one JSON object per sample: agents send a
 * flat object per interval and queries read whole samples back.
 */
export const telemetryMigrations: Migration[] = [
  {
    id: '0400-telemetry',
    sql: `
      CREATE TABLE mqtt_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE node_inventory (
        node_uuid TEXT PRIMARY KEY REFERENCES nodes(uuid) ON DELETE CASCADE,
        facts TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE TABLE node_availability (
        node_uuid TEXT PRIMARY KEY REFERENCES nodes(uuid) ON DELETE CASCADE,
        online INTEGER NOT NULL,
        changed_at TEXT NOT NULL
      );
      CREATE TABLE node_metrics_raw (
        node_uuid TEXT NOT NULL REFERENCES nodes(uuid) ON DELETE CASCADE,
        ts_ms INTEGER NOT NULL,
        vals TEXT NOT NULL
      );
      CREATE INDEX node_metrics_raw_node_ts ON node_metrics_raw (node_uuid, ts_ms);
      CREATE INDEX node_metrics_raw_ts ON node_metrics_raw (ts_ms);
      CREATE TABLE node_metrics_minute (
        node_uuid TEXT NOT NULL REFERENCES nodes(uuid) ON DELETE CASCADE,
        minute_start_ms INTEGER NOT NULL,
        vals TEXT NOT NULL,
        samples INTEGER NOT NULL,
        PRIMARY KEY (node_uuid, minute_start_ms)
      );
      CREATE INDEX node_metrics_minute_ts ON node_metrics_minute (minute_start_ms);
    `,
  },
];
