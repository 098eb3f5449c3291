import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from '../harness/fixtures.js';
import type { NodeRecord } from '../../server/nodes/model.js';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../common/logging.js';
import { Database } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { SecretBox } from '../../server/security/secrets.js';
import { NodeRegistry } from '../../server/nodes/registry.js';
import { RuleStore } from '../../server/inspection/rule-store.js';

export const INVENTORY_DIR = path.join(FIXTURES, 'ironic', 'inventory');
export const RULES_DIR = path.join(FIXTURES, 'ironic', 'rules');

export function inventory(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(INVENTORY_DIR, file), 'utf8')) as Record<string, unknown>;
}

export const DELL = 'metal3-dell-poweredge-r320-introspection-data.json';
export const KVM = 'metal3-kvm-vm-introspection-data.json';
export const BOCHS = 'inspector-api-v1-data-introspection-response.json';
export const CONTINUE = 'inspector-api-v1-continue-request.json';
export const IRONIC_API = 'ironic-api-node-inventory-response.json';

export function node(over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    uuid: '11111111-2222-4333-8444-555555555555', name: 'n1', ports: [], driver: 'fake', driverInfo: {},
    properties: {}, capabilities: {}, rootDevice: {}, provisionState: 'manageable', powerState: 'power off',
    maintenance: false, maintenanceReason: '', lastError: '', currentStep: '', createdAt: '2025-01-01T00:00:00Z', updatedAt: '2025-01-01T00:00:00Z',
    ...over,
  };
}

/** Stores inventories in ospd's database by node name, as if their agents had reported them (WAL lets this run beside ospd). */
export async function seedInventories(dataDir: string, byName: Record<string, unknown>): Promise<void> {
  const db = await Database.open(path.join(dataDir, 'ospd.sqlite'));
  try {
    for (const [name, doc] of Object.entries(byName)) {
      const row = await db.get<{ uuid: string }>('SELECT uuid FROM nodes WHERE name = ?', [name]);
      if (!row) throw new Error(`seedInventories: no node named ${name}`);
      await db.run('INSERT INTO node_inventory (node_uuid, facts, updated_at) VALUES (?, ?, ?)', [row.uuid, JSON.stringify(doc), new Date().toISOString()]);
    }
  } finally {
    await db.close();
  }
}

/** A migrated store in dir with a node registry and the rule store over it, as ospd wires them. */
export async function openRuleStore(dir: string, log: Logger): Promise<{ db: Database; registry: NodeRegistry; rules: RuleStore }> {
  const db = await Database.open(path.join(dir, 'ospd.sqlite'));
  await migrate(db);
  const secrets = SecretBox.fromKey(randomBytes(32));
  return { db, registry: new NodeRegistry(db, secrets, log), rules: new RuleStore(db, secrets) };
}
