import type { Migration } from '../migrations.js';

/** DHCP leases (they survive a restart) and every boot step seen per MAC. */
export const pxeMigrations: Migration[] = [
  {
    id: '0300-pxe',
    sql: `
      CREATE TABLE dhcp_leases (
        mac TEXT PRIMARY KEY,
        ipv4_address TEXT NOT NULL UNIQUE,
        expires_at_ms INTEGER NOT NULL,
        hostname TEXT,
        state TEXT NOT NULL
      );
      CREATE TABLE boot_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        mac TEXT NOT NULL,
        time TEXT NOT NULL,
        service TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX boot_log_mac ON boot_log(mac, id);
    `,
  },
];
