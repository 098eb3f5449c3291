import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logging.js';
import { Database } from '../../server/store/db.js';
import { nodeStore } from '../../server/store/nodes.js';
import { NodeRegistry } from '../../server/nodes/registry.js';
import { RuleStore } from '../../server/inspection/rule-store.js';
import { InspectionPreview } from '../../server/inspection/preview.js';
import { processInventory } from '../../server/inspection/process.js';
import { parseRuleDocument } from '../../server/inspection/rules/validate.js';
import { DELL, KVM, inventory, openRuleStore } from './helpers.js';
import { fixedSample, ruleText } from './ironic-helpers.js';

/** Ironic-format rules through the store, the preview and processInventory, over a real SQLite store. */
describe('Ironic-format rules stored, previewed and applied', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-ironic-rules-'));
  const logLines: string[] = [];
  const log = createLogger({ name: 'test', level: 'debug', destination: { write: (s: string) => void logLines.push(s) } });
  let db: Database;
  let registry: NodeRegistry;
  let rules: RuleStore;
  const SECRET = 'Ironic-Secret-9';
  const secretRule = {
    uuid: 'site-bmc', description: 'site BMC credentials', priority: 200, sensitive: true,
    conditions: [{ op: 'contains', args: { value: '{inventory[system_vendor][manufacturer]}', regex: '(?i)dell' } }],
    actions: [
      { op: 'set-attribute', args: { path: '/driver_info/redfish_password', value: SECRET } },
      { op: 'log', args: { msg: `BMC {inventory[bmc_address]} gets ${SECRET}`, level: 'warning' } },
    ],
  };
  const v1 = { uuid: '00000000-0000-4000-8000-0000000000f1', description: 'inspector v1', conditions: [], actions: [{ action: 'set-capability', name: 'v1', value: 'yes' }] };

  beforeAll(async () => {
    ({ db, registry, rules } = await openRuleStore(dir, log));
    const base = { driver: 'fake' as const, driverInfo: {}, properties: {}, capabilities: {}, rootDevice: {}, ports: [] };
    // created nodes stay in enroll: an inventory for them is a discovered machine's
    await registry.create({ ...base, name: 'dell' }, 'test');
    await registry.create({ ...base, name: 'kvm' }, 'test');
    await rules.import(parseRuleDocument(JSON.stringify(v1), 'v1.json'));
    await rules.import(parseRuleDocument(fixedSample(), 'sample.yaml'));
    await rules.import(parseRuleDocument(ruleText('ironic-inspection-rule-create-request.json'), 'create.json'));
    await rules.import(parseRuleDocument(JSON.stringify(secretRule), 'secret.json'));
  });

  afterAll(async () => {
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists rules in run order: priority, then import order; inspector v1 rules as 0', async () => {
    const list = await rules.list();
    expect(list.map((r) => [r.description, r.format === 'ironic' ? r.priority : 'v1'])).toEqual([
      ['site BMC credentials', 200], ['Configure iDRAC for Dell servers', 100], ['BMC credentials', 100], ['Add traits for high-memory nodes', 90],
      ['Set UEFI boot mode for modern systems', 60], ['Reject nodes with insufficient CPU cores', 50], ['inspector v1', 'v1'],
    ]);
  });

  it("a sensitive rule's actions are sealed at rest, plain for evaluation, masked when presented", async () => {
    const raw = await db.get<{ body: string }>('SELECT body FROM inspection_rules WHERE uuid = ?', ['site-bmc']);
    expect(raw!.body).not.toContain(SECRET);
    expect(raw!.body).not.toContain('redfish_password');
    const plain = await db.get<{ body: string }>('SELECT body FROM inspection_rules WHERE uuid = ?', ['rule-add-hardware-traits']);
    expect(JSON.parse(plain!.body).actions[0]).toEqual({ op: 'add-trait', args: { name: 'CUSTOM_HIGH_MEMORY' } });
    const r = await rules.get('SITE-BMC');
    expect(r).toMatchObject({ format: 'ironic', actions: secretRule.actions });
    const shown = rules.present(r);
    expect(JSON.stringify(shown)).not.toContain(SECRET);
    expect(shown).toMatchObject({
      conditions: secretRule.conditions,
      actions: [
        { op: 'set-attribute', args: { path: '/driver_info/redfish_password', value: '******' } },
        { op: 'log', args: { msg: '******', level: 'warning' } },
      ],
    });
  });

  it('identical re-import is a no-op; a different rule under a stored id is refused; nothing half-imported', async () => {
    const again = await rules.import(parseRuleDocument(JSON.stringify(secretRule), 'secret.json'));
    expect(again).toMatchObject({ created: [], unchanged: [{ uuid: 'site-bmc' }] });
    const before = (await rules.list()).length;
    await expect(rules.import(parseRuleDocument(JSON.stringify([
      { uuid: 'brand-new', priority: 1, actions: [{ op: 'add-trait', args: ['CUSTOM_NEW'] }] },
      { ...secretRule, priority: 201 },
    ]), 't'))).rejects.toThrow(/rules\[1\].uuid: "site-bmc": expected a uuid not already used by a different stored rule/);
    expect((await rules.list()).length).toBe(before);
  });

  it('the preview masks a sensitive rule\'s values and log lines, and changes nothing', async () => {
    const dell = await registry.get('dell');
    await db.run('INSERT INTO node_inventory (node_uuid, facts, updated_at) VALUES (?, ?, ?)', [dell.uuid, JSON.stringify(inventory(DELL)), new Date().toISOString()]);
    const [p] = await new InspectionPreview(db, rules).preview();
    expect(p.node.name).toBe('dell');
    expect(p.failure).toBeUndefined();
    expect(p.matched).toEqual(['site-bmc', 'rule-dell-bmc-setup', p.matched[2], 'rule-add-hardware-traits', '00000000-0000-4000-8000-0000000000f1']);
    expect(p.described).toEqual([
      'set driver_info/redfish_password = ******',
      'set driver = ******', 'set driver_info/redfish_address = ******',
      'set driver = ******', 'set driver_info/redfish_address = ******', 'set driver_info/redfish_username = ******', 'set driver_info/redfish_password = ******',
      'add trait CUSTOM_HIGH_MEMORY', 'set capability memory_class = high', 'set capability v1 = yes',
    ]);
    expect(p.logs).toEqual(['warning: ******', 'info: ******']);
    expect(JSON.stringify({ d: p.described, l: p.logs })).not.toContain(SECRET);
    expect(await registry.get('dell')).toEqual(dell);
  });

  it('processInventory applies them in one update; node history and the server log show no sensitive value', async () => {
    const dell = await registry.get('dell');
    logLines.length = 0;
    const r = await processInventory({ db, registry, rules, log }, dell.uuid, inventory(DELL));
    expect(r.failure).toBeUndefined();
    const after = await registry.get('dell');
    expect(after.driver).toBe('redfish');
    expect(after.driverInfo.address).toBe('https://10.9.10.109');
    expect(registry.revealDriverInfo(after).password).toBe('password');
    expect(after.capabilities).toEqual({ 'trait.CUSTOM_HIGH_MEMORY': 'true', memory_class: 'high', v1: 'yes' });
    const events = await nodeStore.listEvents(db, dell.uuid, 20);
    const ev = events.find((e) => e.type === 'inspection');
    expect(ev?.message).toMatch(/5 rule\(s\) matched/);
    expect(JSON.parse(String(ev?.data)).ruleLogs).toEqual(['warning: ******', 'info: ******']);
    expect(JSON.stringify(events)).not.toContain(SECRET);
    const logged = logLines.join('');
    expect(logged).not.toContain(SECRET);
    expect(logLines.map((l) => JSON.parse(l) as { level: number; rule?: string; msg: string }).filter((l) => l.rule === 'site-bmc')).toMatchObject([{ level: 40, msg: '******' }]);
  });

  it('a non-sensitive log action reaches the server log rendered; a fail rule leaves the node untouched', async () => {
    const kvm = await registry.get('kvm');
    logLines.length = 0;
    const r = await processInventory({ db, registry, rules, log }, kvm.uuid, inventory(KVM));
    expect(r.failure).toBe('Node has insufficient CPU cores (minimum 4 required)');
    expect(await registry.get('kvm')).toEqual(kvm);
    await rules.delete('rule-reject-old-cpu');
    await rules.import(parseRuleDocument(JSON.stringify({ uuid: 'say', priority: 5, actions: [{ op: 'log', args: ['{inventory[system_vendor][product_name]} has {inventory[cpu][count]} CPUs'] }] }), 'say.json'));
    logLines.length = 0;
    expect((await processInventory({ db, registry, rules, log }, kvm.uuid, inventory(KVM))).failure).toBeUndefined();
    expect(logLines.map((l) => JSON.parse(l) as { level: number; rule?: string; msg: string }).filter((l) => l.rule === 'say')).toMatchObject([{ level: 30, msg: 'KVM has 2 CPUs' }]);
  });
});
