/**
 * Restart safety of a deploy through the real bin/ospd, killed with SIGKILL
 * (no shutdown code runs: what survives is what the store and the data dir
 * hold). The node is inspected, cleaned and deployed by the real osp-agent
 * ramdisk binary (FakeMachine); every step goes through ospctl.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OspdProcess } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';
import { certSha256 } from '../../server/security/pki.js';
import { FakeMachine } from '../inspection-flow/machine.js';
import { Database } from '../../server/store/db.js';
import { telemetryStore } from '../../server/store/telemetry.js';
import { DISK_BYTES, makeQcow2, MAC } from './deploy-setup.js';

const NODE = 'deploy-k';
const ospd = new OspdProcess(undefined, ['--deploy-wait-timeout-ms', '120000', '--deploy-boot-timeout-ms', '600000']);
const machines: FakeMachine[] = [];
const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-deploy-kill-'));

afterAll(async () => {
  for (const m of machines) await m.halt();
  await ospd.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface NodeJson { provision_state: string; last_error: string; current_step: string; power_state: string }
const show = () => ospd.json<NodeJson>(['node', 'show', NODE]);
const inState = (states: string[], timeoutMs: number, detail?: () => string) =>
  waitFor(`${NODE} in ${states.join(' or ')}`, async () => { const n = await show(); return states.includes(n.provision_state) ? n : undefined; }, { timeoutMs, intervalMs: 200, retryErrors: true, detail });

async function ok(args: string[]): Promise<string> {
  const r = await ospd.ctl(args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`ospctl ${args.join(' ')}: ${r.code}: ${r.stderr}\n${ospd.log().slice(-2000)}`);
  return r.stdout;
}

/** A machine that PXE-booted the ramdisk: the real agent, pointed at this ospd. */
function boot(): FakeMachine {
  const m = new FakeMachine({ macs: [MAC], diskBytes: DISK_BYTES });
  machines.push(m);
  const admin = ospd.admin();
  m.bootParams(admin.server, certSha256(admin.ca));
  m.boot();
  return m;
}

describe('SIGKILL of ospd mid-deploy', () => {
  it('killed while the ramdisk writes, restarted: the node ends active (the agent reconnects and is answered) or deploy failed with a reason — never stuck', async () => {
    await ospd.start();
    await ok(['node', 'create', '--name', NODE, '--driver', 'fake', '--port', MAC, '--root-device', 'name=/dev/vda']);
    await ok(['node', 'manage', NODE, '--wait']);
    await ok(['node', 'inspect', NODE]);
    boot();
    await inState(['manageable'], 30_000);
    // A FakeMachine's agent runs no commands (--root), so its inventory has no disks: the disk
    // goes into the store while ospd is stopped, as the in-process deploy tests put it there.
    await ospd.stop();
    const db = await Database.open(path.join(ospd.dataDir, 'ospd.sqlite'));
    const uuid = (await db.get<{ uuid: string }>('SELECT uuid FROM nodes WHERE name = ?', [NODE]))!.uuid;
    await telemetryStore.putFacts(db, uuid, JSON.stringify({ disks: [{ name: '/dev/vda', size: DISK_BYTES, serial: 'disk-0001' }] }), new Date().toISOString());
    await db.close();
    await ospd.start();
    await ok(['node', 'provide', NODE]);
    boot();
    await inState(['available'], 30_000);
    await ok(['image', 'upload', 'img-k', makeQcow2(dir)]);

    await ok(['node', 'deploy', NODE, '--image', 'img-k']);
    await inState(['wait call-back'], 20_000);
    const m = boot();
    // The command is on its way to the disk: the agent logged it (stderr is its log).
    await waitFor('the deploy command received', () => /"kind":"deploy"[^\n]*command received/.test(m.stderr), { timeoutMs: 30_000, intervalMs: 10, detail: () => m.stderr });
    expect(await ospd.stop('SIGKILL')).toBeNull();
    await ospd.start();
    const end = await inState(['active', 'deploy failed'], 90_000, () => `${m.stderr.slice(-3000)}\n${ospd.log().slice(-3000)}`);
    if (end.provision_state === 'deploy failed') expect(end.last_error).toMatch(/\S/);
    else expect(end.current_step).toMatch(/^wait for the deployed system's agent to connect/);
    // Whatever the end, nothing is left in progress: a later operation may start at once.
    expect(['active', 'deploy failed']).toContain(end.provision_state);
    const history = await ospd.json<{ type: string; message: string }[]>(['node', 'history', NODE]);
    expect(history.filter((e) => e.type === 'provision').map((e) => e.message).join('\n')).toMatch(/→ (active|deploy failed)/);
  }, 240_000);

  it('killed in wait call-back before the machine boots, restarted: the deadline and the request survive and the deploy completes', async () => {
    // The machines so far are off now (a fake machine's agent would keep looking up after its reboot).
    for (const m of machines.splice(0)) await m.halt();
    const cur = await show();
    await ok(['node', cur.provision_state === 'active' ? 'rebuild' : 'undeploy', NODE]);
    if (cur.provision_state !== 'active') {
      // deploy failed → undeploy cleans it back to available first.
      boot();
      await inState(['available'], 60_000);
      await ok(['node', 'deploy', NODE, '--image', 'img-k']);
    }
    await inState(['wait call-back'], 20_000);
    expect(await ospd.stop('SIGKILL')).toBeNull();
    await ospd.start();
    expect((await show()).provision_state).toBe('wait call-back');
    const m = boot();
    const end = await inState(['active', 'deploy failed'], 90_000, () => `${m.stderr.slice(-3000)}\n${ospd.log().slice(-3000)}`);
    expect([end.provision_state, end.last_error]).toEqual(['active', '']);
  }, 240_000);
});
