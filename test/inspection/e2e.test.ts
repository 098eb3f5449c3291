import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OspdProcess, nodeFile } from '../harness/ospd.js';
import { DELL, KVM, RULES_DIR, inventory, seedInventories } from './helpers.js';

/**
 * Real bin/ospd and bin/ospctl (npm run build first). The inventories go
 * into node_inventory through the store module, as the telemetry sink
 * writes them, not through the API under test.
 */
describe('ospctl rule and profile against a real ospd', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'osp-rules-e2e-'));
  const ospd = new OspdProcess();

  const json = (args: string[]) => ospd.json<Record<string, unknown>[]>(args);

  beforeAll(async () => {
    await ospd.start();
    writeFileSync(path.join(tmp, 'nodes.json'), nodeFile(3, { prefix: 'e2e' }));
    expect((await ospd.ctl(['node', 'import', path.join(tmp, 'nodes.json')])).code).toBe(0);
    await seedInventories(ospd.dataDir, {
      'e2e-0': inventory(DELL),
      // as the osp agent sends it: the bare inventory with its schema
      'e2e-1': { schema: 'osp.inventory/v1', ...(inventory(KVM).inventory as object) },
    });
  }, 60_000);

  afterAll(async () => {
    await ospd.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('imports the TripleO profile rules and a storage rule, lists and shows them', async () => {
    const created = await json(['rule', 'import', path.join(RULES_DIR, 'tripleo-doc-profile-matching-rules.json')]);
    expect(created.map((r) => r.result)).toEqual(['created', 'created', 'created']);
    writeFileSync(path.join(tmp, 'storage.yaml'), [
      '- uuid: 5a1e0000-0000-4000-8000-000000000001',
      '  description: big Dell disks are block storage',
      '  conditions:',
      '    - {op: eq, field: "data://inventory.system_vendor.manufacturer", value: "Dell Inc."}',
      '    - {op: ge, field: "data://inventory.disks[*].size", value: 500000000000}',
      '  actions:',
      '    - {action: set-capability, name: profile, value: block-storage}',
      '    - {action: set-attribute, path: driver_info/ipmi_password, value: "Rule-Secret-1"}',
    ].join('\n'));
    expect((await json(['rule', 'import', path.join(tmp, 'storage.yaml')]))[0]).toMatchObject({ uuid: '5a1e0000-0000-4000-8000-000000000001', result: 'created' });
    const list = await json(['rule', 'list']);
    expect(list).toHaveLength(4);
    expect(list[3]).toMatchObject({ description: 'big Dell disks are block storage', conditions: 2, actions: 2 });
    const shown = await ospd.ctl(['rule', 'show', '5a1e0000-0000-4000-8000-000000000001', '-f', 'json']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('block-storage');
    expect(shown.stdout).not.toContain('Rule-Secret-1');
    expect(ospd.log()).not.toContain('Rule-Secret-1');
  });

  it('a bad rules file is refused as a whole, naming the field', async () => {
    const r = await ospd.ctl(['rule', 'import', path.join(RULES_DIR, 'inspector-doc-ipmi-and-deploy-rules.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('rules[1].actions[0].path: "driver_info/deploy_kernel"');
    expect(await json(['rule', 'list'])).toHaveLength(4);
    const missing = await ospd.ctl(['rule', 'import', path.join(tmp, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope.json: cannot read: ENOENT/);
  });

  it('rule preview shows what would change for nodes with an inventory, and changes nothing', async () => {
    const before = await json(['node', 'list', '--long']);
    const preview = await json(['rule', 'preview']);
    expect(preview.map((p) => p.node)).toEqual(['e2e-0', 'e2e-1']);
    const dell = preview[0];
    expect(dell.matched_rules).toHaveLength(2);
    expect(dell.changes).toBe('set capability compute_profile = 1; set capability control_profile = 1; remove capability profile; set capability profile = block-storage; set driver_info/ipmi_password = ******');
    expect(preview[1].changes).toBe('set capability compute_profile = 1; set capability control_profile = 1; remove capability profile');
    expect(JSON.stringify(preview)).not.toContain('Rule-Secret-1');
    expect(await json(['node', 'list', '--long'])).toEqual(before);

    const one = await json(['rule', 'preview', '5a1e0000-0000-4000-8000-000000000001']);
    expect(one.map((p) => [p.node, (p.matched_rules as string[]).length])).toEqual([['e2e-0', 1], ['e2e-1', 0]]);
  });

  it('profile list shows current and possible profiles', async () => {
    const rows = await json(['profile', 'list']);
    const by = Object.fromEntries(rows.map((r) => [r.name, r]));
    // nodeFile gives even nodes profile:control, odd ones profile:compute
    expect(by['e2e-0']).toMatchObject({ state: 'enroll', profile: 'control', possible_profiles: ['block-storage', 'compute', 'control'] });
    expect(by['e2e-1']).toMatchObject({ profile: 'compute', possible_profiles: ['compute', 'control'] });
    expect(by['e2e-2']).toMatchObject({ profile: 'control', possible_profiles: ['control'] });
    const table = await ospd.ctl(['profile', 'list']);
    expect(table.stdout).toMatch(/Possible Profiles/);
  });

  it('rule delete removes one rule; deleting it again says it is not found', async () => {
    const del = await ospd.ctl(['rule', 'delete', '5a1e0000-0000-4000-8000-000000000001']);
    expect(del).toMatchObject({ code: 0, stdout: 'Deleted rule 5a1e0000-0000-4000-8000-000000000001\n' });
    expect(await json(['rule', 'list'])).toHaveLength(3);
    const again = await ospd.ctl(['rule', 'delete', '5a1e0000-0000-4000-8000-000000000001']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("inspection rule '5a1e0000-0000-4000-8000-000000000001' not found");
  });
});
