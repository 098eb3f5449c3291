/**
 * Inspection through the real bin/ospd (its composition root, not services
 * built in the test): fake BMC driver, the real osp-agent binary in ramdisk
 * mode on a prepared root, the rules engine, and the inspection explanation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { OspdProcess } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';
import { certSha256 } from '../../server/security/pki.js';
import { FakeMachine } from './machine.js';

describe('inspection wired into ospd', () => {
  const ospd = new OspdProcess(undefined, ['--inspect-wait-timeout-ms', '4000']);
  const machine = new FakeMachine({ macs: ['52:54:00:77:00:01'], serial: 'SER-77', cpus: 3 });
  const show = async (n: string) => JSON.parse((await ospd.ctl(['node', 'show', n, '-f', 'json'])).stdout);

  beforeAll(async () => {
    await ospd.start();
    const rules = path.join(ospd.dataDir, 'operator-rules.json'); // removed with the data dir
    writeFileSync(rules, JSON.stringify([{
      description: 'three CPUs make a compute node',
      conditions: [{ op: 'eq', field: 'data://inventory.cpu.count', value: 3 }],
      actions: [{ action: 'set-capability', name: 'profile', value: 'compute' }],
    }]));
    expect((await ospd.ctl(['rule', 'import', rules])).code).toBe(0);
    for (const name of ['insp-0', 'insp-1']) {
      const mac = name === 'insp-0' ? '52:54:00:77:00:01' : '52:54:00:77:00:02';
      expect((await ospd.ctl(['node', 'create', '--name', name, '--driver', 'fake', '--port', mac])).code).toBe(0);
      expect((await ospd.ctl(['node', 'manage', name, '--wait'])).code).toBe(0);
    }
  }, 60_000);

  afterAll(async () => {
    await machine.halt();
    await ospd.dispose();
  });

  it('inspects a node end to end: inventory, derived properties, rule profile, powered off, manageable', async () => {
    const admin = ospd.admin();
    const r = await ospd.ctl(['node', 'inspect', 'insp-0']);
    expect(r.code, r.stderr).toBe(0);
    machine.bootParams(admin.server, certSha256(admin.ca));
    machine.boot();
    const n = await waitFor('manageable', async () => {
      const s = await show('insp-0');
      return s.provision_state === 'manageable' ? s : null;
    }, { timeoutMs: 30_000, retryErrors: true });
    expect(n.properties.cpus).toBe(3);
    expect(n.capabilities.profile).toBe('compute');
    expect(n.power_state).toBe('off');
    const inv = JSON.parse((await ospd.ctl(['node', 'inventory', 'insp-0', '-f', 'json'])).stdout);
    expect(JSON.stringify(inv)).toContain('SER-77');
  });

  it('a machine that never boots fails inspection, explained from the boot log', async () => {
    expect((await ospd.ctl(['node', 'inspect', 'insp-1'])).code).toBe(0);
    const n = await waitFor('inspect failed', async () => {
      const s = await show('insp-1');
      return s.provision_state === 'inspect failed' ? s : null;
    }, { timeoutMs: 30_000, retryErrors: true });
    // ospd serves no DHCP in this test, so the boot log's first missing step is the boot script.
    expect(n.last_error).toMatch(/timed out after 4 s in 'inspect wait': 52:54:00:77:00:02 never fetched the boot script \(ospd does not serve DHCP here/);
  });
});
