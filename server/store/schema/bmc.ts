import type { Migration } from '../migrations.js';

/** Power sync bookkeeping: consecutive BMC failures and Ironic's maintenance `fault`. */
export const bmcMigrations: Migration[] = [
  {
    id: '0200-bmc-power-sync',
    sql: `
      ALTER TABLE nodes ADD COLUMN power_failures INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE nodes ADD COLUMN fault TEXT;
      CREATE INDEX nodes_maintenance ON nodes(maintenance, fault);
    `,
  },
];
