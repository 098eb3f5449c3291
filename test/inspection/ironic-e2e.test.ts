import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OspdProcess, nodeFile } from '../harness/ospd.js';
import { DELL, KVM, RULES_DIR, inventory, seedInventories } from './helpers.js';
import { fixedSample } from './ironic-helpers.js';

/**
 * Real bin/ospd and bin/ospctl (npm run build first) with rules in Ironic's
 * format. Inventories go into node_inventory through the store module, as
 * in e2e.test.ts. Imported nodes stay in enroll, so to the rules they are
 * discovered machines ({node.auto_discovered} is true).
 */
describe("ospctl rule with Ironic's format against a real ospd", () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'osp-ironic-e2e-'));
  const ospd = new OspdProcess();
  const json = (args: string[]) => ospd.json<Record<string, unknown>[]>(args);
  let createUuid = '';

  beforeAll(async () => {
    await ospd.start();
    writeFileSync(path.join(tmp, 'nodes.json'), nodeFile(2, { prefix: 'ir' }));
    expect((await ospd.ctl(['node', 'import', path.join(tmp, 'nodes.json')])).code).toBe(0);
    await seedInventories(ospd.dataDir, { 'ir-0': inventory(DELL), 'ir-1': inventory(KVM) });
  }, 60_000);

  afterAll(async () => {
    await ospd.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses the YAML sample as shipped, naming the unquoted template, and imports nothing', async () => {
    const r = await ospd.ctl(['rule', 'import', path.join(RULES_DIR, 'ironic-inspection-rules.yaml.sample')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('rules[1].conditions[0].args[0][0]: {"inventory.memory.physical_mb":null}: expected a string: YAML read the unquoted template {inventory.memory.physical_mb} as a mapping; quote it: "{inventory.memory.physical_mb}"');
    expect(await json(['rule', 'list'])).toEqual([]);
  });

  it('imports the corrected sample and the create request; lists them in priority order with their format', async () => {
    writeFileSync(path.join(tmp, 'rules.yaml'), fixedSample());
    const created = await json(['rule', 'import', path.join(tmp, 'rules.yaml')]);
    expect(created.map((r) => [r.uuid, r.format, r.priority, r.result])).toEqual([
      ['rule-dell-bmc-setup', 'ironic', 100, 'created'], ['rule-add-hardware-traits', 'ironic', 90, 'created'],
      ['rule-reject-old-cpu', 'ironic', 50, 'created'], ['rule-boot-mode-uefi', 'ironic', 60, 'created'],
    ]);
    const [create] = await json(['rule', 'import', path.join(RULES_DIR, 'ironic-inspection-rule-create-request.json')]);
    createUuid = create.uuid as string;
    const list = await json(['rule', 'list']);
    expect(list.map((r) => [r.uuid, r.priority, r.sensitive, r.conditions, r.actions])).toEqual([
      ['rule-dell-bmc-setup', 100, true, 2, 3], [createUuid, 100, true, 2, 4], ['rule-add-hardware-traits', 90, false, 1, 2],
      ['rule-boot-mode-uefi', 60, false, 1, 2], ['rule-reject-old-cpu', 50, false, 1, 1],
    ]);
  });

  it('rule show -f json prints the Ironic rule, its sensitive values masked', async () => {
    const shown = (await json(['rule', 'show', 'rule-dell-bmc-setup'])) as unknown as Record<string, unknown>;
    expect(Object.keys(shown)).toEqual(['uuid', 'description', 'priority', 'phase', 'sensitive', 'conditions', 'actions', 'created_at']);
    expect(shown).toMatchObject({
      uuid: 'rule-dell-bmc-setup', description: 'Configure iDRAC for Dell servers', priority: 100, phase: 'main', sensitive: true,
      conditions: [
        { op: 'contains', args: { value: '{inventory[system_vendor][manufacturer]}', regex: '(?i)dell' } },
        { op: 'is-true', args: { value: '{node.auto_discovered}' } },
      ],
      actions: [
        { op: 'set-attribute', args: { path: '/driver', value: '******' } },
        { op: 'set-attribute', args: { path: '/driver_info/redfish_address', value: '******' } },
        { op: 'log', args: { msg: '******', level: 'info' } },
      ],
    });
    const create = await ospd.ctl(['rule', 'show', createUuid, '-f', 'json']);
    expect(create.stdout).toContain('"path": "/driver_info/redfish_password"');
    expect(create.stdout).not.toMatch(/"value": "(password|admin|idrac)"/);
    const table = await ospd.ctl(['rule', 'show', 'rule-add-hardware-traits']);
    expect(table.stdout).toMatch(/\| format\s+\| ironic\s+\|/);
    expect(table.stdout).toContain('{"op":"!lt","args":[["{inventory[memory][physical_mb]}",65536]]}');
  });

  it('rule preview: the Dell matches three rules with masked values and a masked log line; the 2-CPU KVM would fail', async () => {
    const preview = await json(['rule', 'preview']);
    expect(preview.map((p) => p.node)).toEqual(['ir-0', 'ir-1']);
    expect(preview[0]).toMatchObject({
      matched_rules: ['rule-dell-bmc-setup', createUuid, 'rule-add-hardware-traits'],
      changes: [
        'set driver = ******', 'set driver_info/redfish_address = ******',
        'set driver = ******', 'set driver_info/redfish_address = ******', 'set driver_info/redfish_username = ******', 'set driver_info/redfish_password = ******',
        'add trait CUSTOM_HIGH_MEMORY', 'set capability memory_class = high',
      ].join('; '),
      logs: 'info: ******',
      failure: '',
    });
    expect(preview[1]).toMatchObject({ matched_rules: ['rule-reject-old-cpu'], changes: '', failure: 'Node has insufficient CPU cores (minimum 4 required)' });
    expect(JSON.stringify(preview)).not.toContain('10.9.10.109');
    const one = await json(['rule', 'preview', 'rule-add-hardware-traits']);
    expect(one.map((p) => [p.node, p.matched_rules])).toEqual([['ir-0', ['rule-add-hardware-traits']], ['ir-1', []]]);
    expect(ospd.log()).not.toContain('https://10.9.10.109');
  });

  it('refuses an action osp cannot carry out, and a phase other than main, each on its own line', async () => {
    writeFileSync(path.join(tmp, 'bad.json'), JSON.stringify([
      { uuid: 'ports', priority: 1, actions: [{ op: 'set-port-attribute', args: { port_id: 'x', path: 'extra/a', value: 1 } }] },
      { uuid: 'cleaning', phase: 'cleaning', actions: [{ op: 'add-trait', args: ['CUSTOM_X'] }] },
    ]));
    const r = await ospd.ctl(['rule', 'import', path.join(tmp, 'bad.json')]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => /^rules\[\d\]/.test(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^rules\[0\]\.actions\[0\]\.op: "set-port-attribute": expected .*osp ports are MAC addresses with no attributes of their own$/);
    expect(lines[1]).toMatch(/^rules\[1\]\.phase: "cleaning": expected main/);
    expect(await json(['rule', 'list'])).toHaveLength(5);
  });

  it('rule delete removes an Ironic rule by its id', async () => {
    expect(await ospd.ctl(['rule', 'delete', 'rule-boot-mode-uefi'])).toMatchObject({ code: 0, stdout: 'Deleted rule rule-boot-mode-uefi\n' });
    expect((await json(['rule', 'list'])).map((r) => r.uuid)).not.toContain('rule-boot-mode-uefi');
  });
});
