import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logging.js';
import { Database } from '../../server/store/db.js';
import { nodeStore } from '../../server/store/nodes.js';
import { NodeRegistry } from '../../server/nodes/registry.js';
import { RuleStore } from '../../server/inspection/rule-store.js';
import { InspectionPreview } from '../../server/inspection/preview.js';
import { processInventory } from '../../server/inspection/process.js';
import { parseRuleDocument } from '../../server/inspection/rules/validate.js';
import { BOCHS, DELL, KVM, inventory, openRuleStore } from './helpers.js';

describe('processInventory, the rule store and the preview over a real SQLite store', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-inspection-'));
  let db: Database;
  let registry: NodeRegistry;
  let rules: RuleStore;
  const log = silentLogger();

  beforeAll(async () => {
    ({ db, registry, rules } = await openRuleStore(dir, log));
    const base = { driver: 'fake' as const, driverInfo: {}, properties: {}, capabilities: {}, rootDevice: {} };
    await registry.create({ ...base, name: 'dell', ports: [] }, 'test');
    await registry.create({ ...base, name: 'kvm', ports: [], capabilities: { profile: 'control' } }, 'test');
    await registry.create({ ...base, name: 'bochs', ports: [] }, 'test');
    await registry.create({ ...base, name: 'other', ports: ['52:54:00:4e:3d:30'] }, 'test');
    await rules.import(parseRuleDocument(JSON.stringify([
      { uuid: '00000000-0000-4000-8000-000000000001', description: 'too small', conditions: [{ op: 'lt', field: 'memory_mb', value: 4096 }], actions: [{ action: 'fail', message: 'Memory too low' }] },
      { uuid: '00000000-0000-4000-8000-000000000002', description: 'big disk', conditions: [{ op: 'ge', field: 'local_gb', value: 100 }], actions: [{ action: 'set-capability', name: 'profile', value: 'compute' }, { action: 'add-trait', name: 'CUSTOM_BIG' }] },
      { uuid: '00000000-0000-4000-8000-000000000003', description: 'creds', conditions: [{ op: 'eq', field: 'data://inventory.system_vendor.manufacturer', value: 'Dell Inc.' }], actions: [{ action: 'set-attribute', path: 'driver_info/fake_password', value: 'hunter2' }] },
    ]), 't'));
  });

  afterAll(async () => {
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('secret rule values are sealed at rest, masked when presented, plain for evaluation', async () => {
    const raw = await db.get<{ body: string }>('SELECT body FROM inspection_rules WHERE uuid = ?', ['00000000-0000-4000-8000-000000000003']);
    expect(raw!.body).not.toContain('hunter2');
    const r = await rules.get('00000000-0000-4000-8000-000000000003');
    expect(JSON.stringify(r)).toContain('hunter2');
    expect(JSON.stringify(rules.present(r))).not.toContain('hunter2');
  });

  it('import is all or nothing; identical re-import is a no-op; a different rule under a stored uuid is refused', async () => {
    const before = (await rules.list()).length;
    const again = await rules.import(parseRuleDocument(JSON.stringify({ uuid: '00000000-0000-4000-8000-000000000001', description: 'too small', conditions: [{ op: 'lt', field: 'memory_mb', value: 4096 }], actions: [{ action: 'fail', message: 'Memory too low' }] }), 't'));
    expect(again.unchanged).toHaveLength(1);
    await expect(rules.import(parseRuleDocument(JSON.stringify([
      { uuid: '00000000-0000-4000-8000-0000000000aa', actions: [{ action: 'add-trait', name: 'CUSTOM_NEW' }] },
      { uuid: '00000000-0000-4000-8000-000000000001', actions: [{ action: 'fail', message: 'changed' }] },
    ]), 't'))).rejects.toThrow(/rules\[1\].uuid: "00000000-0000-4000-8000-000000000001": expected a uuid not already used/);
    expect((await rules.list()).length).toBe(before);
  });

  it('the preview changes nothing and covers only nodes with a stored inventory', async () => {
    const dell = await registry.get('dell');
    await db.run('INSERT INTO node_inventory (node_uuid, facts, updated_at) VALUES (?, ?, ?)', [dell.uuid, JSON.stringify(inventory(DELL)), new Date().toISOString()]);
    const preview = new InspectionPreview(db, rules);
    const p = await preview.preview();
    expect(p.map((x) => x.node.name)).toEqual(['dell']);
    expect(p[0].matched).toEqual(['00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000003']);
    expect(p[0].described).toEqual(['set capability profile = compute', 'add trait CUSTOM_BIG', 'set driver_info/fake_password = ******']);
    expect(await registry.get('dell')).toEqual(dell);
    const profiles = await preview.profiles();
    expect(profiles.find((x) => x.node.name === 'dell')).toMatchObject({ profile: '', possible: ['compute'] });
    expect(profiles.find((x) => x.node.name === 'kvm')).toMatchObject({ profile: 'control', possible: ['control'] });
  });

  it('derives properties, adds the PXE port, applies the rules in one update and records an event', async () => {
    const dell = await registry.get('dell');
    const r = await processInventory({ db, registry, rules, log }, dell.uuid, inventory(DELL));
    expect(r.failure).toBeUndefined();
    expect(r.properties).toEqual({ cpus: 16, memoryMb: 81920, localGb: 557, cpuArch: 'x86_64' });
    expect(r.ports).toEqual(['b0:83:fe:c6:63:86']);
    const after = await registry.get('dell');
    expect(after.properties).toEqual({ cpus: 16, memoryMb: 81920, localGb: 557, cpuArch: 'x86_64' });
    expect(after.ports).toEqual(['b0:83:fe:c6:63:86']);
    expect(after.capabilities).toEqual({ profile: 'compute', 'trait.CUSTOM_BIG': 'true' });
    expect(after.driverInfo.password).toMatch(/^enc:v1:/);
    expect(registry.revealDriverInfo(after).password).toBe('hunter2');
    expect(after.provisionState).toBe(dell.provisionState);
    const events = await nodeStore.listEvents(db, dell.uuid, 10);
    const ev = events.find((e) => e.type === 'inspection');
    expect(ev?.message).toMatch(/cpus=16; memory_mb=81920; local_gb=557; cpu_arch=x86_64; ports added b0:83:fe:c6:63:86; 2 rule\(s\) matched/);
    expect(JSON.stringify(events)).not.toContain('hunter2');
  });

  it('a small disk matches no profile rule; a MAC owned by another node is left with it', async () => {
    const kvm = await registry.get('kvm');
    const r = await processInventory({ db, registry, rules, log }, kvm.uuid, inventory(KVM));
    expect(r).toMatchObject({ matchedRules: [], ports: ['00:ca:ff:65:6e:68'] });
    expect((await registry.get('kvm')).capabilities).toEqual({ profile: 'control' });
    const doc = inventory(KVM);
    const inv = doc.inventory as { boot: { pxe_interface: string } };
    inv.boot.pxe_interface = '52:54:00:4e:3d:30';
    const again = await processInventory({ db, registry, rules, log }, kvm.uuid, doc);
    expect(again.failure).toBeUndefined();
    expect(again.ports).toEqual([]);
    expect((await registry.get('kvm')).ports).toEqual(['00:ca:ff:65:6e:68']);
    expect((await registry.get('other')).ports).toEqual(['52:54:00:4e:3d:30']);
  });

  it('a fail rule leaves the node untouched and says why', async () => {
    const bochs = await registry.get('bochs');
    const r = await processInventory({ db, registry, rules, log }, bochs.uuid, inventory(BOCHS));
    expect(r.failure).toBe('Memory too low');
    expect(await registry.get('bochs')).toEqual(bochs);
    const ev = (await nodeStore.listEvents(db, bochs.uuid, 10)).find((e) => e.type === 'inspection');
    expect(ev?.message).toBe('inspection processing failed: Memory too low');
  });

  it('bad root device hints fail processing with the hint named', async () => {
    const other = await registry.update('other', [{ op: 'add', path: '/root_device/size', value: 'huge' }], 'test');
    const r = await processInventory({ db, registry, rules, log }, other.uuid, inventory(KVM));
    expect(r.failure).toMatch(/root_device.size: "huge": expected a whole number of GiB/);
  });
});
