import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { OspdProcess } from '../harness/ospd.js';
import { FIXTURES } from '../harness/fixtures.js';
import { waitFor } from '../harness/wait.js';
import { IpmiSimInstance } from '../bmc/ipmi-sim.js';
import { RedfishSimulator } from '../../lab/redfish-sim/simulator.js';
import { generateSelfSignedCert, type SelfSignedCert } from '../../lab/redfish-sim/tls.js';

// Real peers: OpenIPMI's ipmi_sim (driven by ospd through ipmitool) and the
// Redfish simulator, both on loopback; ospd and ospctl are the real programs.
const IPMI_PW = 'Ipmi-e2e-Secret-7';
const RF_PW = 'Redfish-e2e-Secret-9';
const WRONG_PW = 'Wrong-e2e-Secret-3';
const MOCKUP = join(FIXTURES, 'redfish', 'public-rackmount1');

let dir: string;
let caFile: string;
let cert: SelfSignedCert;
let ipmi: IpmiSimInstance;
let rf: RedfishSimulator;
let rfDying: RedfishSimulator;
let ospd: OspdProcess;

interface EventJson { time: string; type: string; actor: string; message: string; data: Record<string, unknown> }

async function ctl(args: string[], timeoutMs = 60_000) {
  return ospd.ctl(args, { timeoutMs });
}
async function ok(args: string[]): Promise<string> {
  const r = await ctl(args);
  if (r.code !== 0) throw new Error(`ospctl ${args.join(' ')} → ${r.code}: ${r.stderr}`);
  return r.stdout;
}
async function json<T>(args: string[]): Promise<T> { return JSON.parse(await ok([...args, '-f', 'json'])) as T; }
const show = (n: string) => json<Record<string, unknown>>(['node', 'show', n]);
const history = (n: string) => json<EventJson[]>(['node', 'history', n, '--limit', '200']);

/** Reads a resource straight from the Redfish simulator, trusting only its own certificate. */
function readRedfish(sim: RedfishSimulator, path: string, post?: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: sim.port, path, method: post ? 'POST' : 'GET', ca: cert.certPem, servername: 'localhost', timeout: 5000,
      headers: { authorization: `Basic ${Buffer.from(`admin:${RF_PW}`).toString('base64')}`, 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => { try { resolve(body ? JSON.parse(body) : {}); } catch (e) { reject(e); } });
    });
    req.on('timeout', () => req.destroy(new Error('redfish request timed out')));
    req.on('error', reject);
    req.end(post ? JSON.stringify(post) : undefined);
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'osp-bmc-e2e-'));
  cert = await generateSelfSignedCert();
  caFile = join(dir, 'bmc-ca.pem');
  writeFileSync(caFile, cert.certPem);
  ipmi = new IpmiSimInstance('osp', IPMI_PW);
  await ipmi.start();
  rf = new RedfishSimulator({ mockupDir: MOCKUP, cert, username: 'admin', password: RF_PW, resetDelayMs: 50 });
  await rf.start();
  rfDying = new RedfishSimulator({ mockupDir: MOCKUP, cert, username: 'admin', password: RF_PW });
  await rfDying.start();
  ospd = new OspdProcess(undefined, [
    '--bmc-min-interval-ms', '0', '--bmc-call-timeout-ms', '4000', '--power-wait-timeout-ms', '15000',
    '--power-sync-interval-ms', '400', '--power-sync-max-failures', '2',
  ]);
  await ospd.start();
  const redfishNode = (name: string, port: number) => ({
    name, pm_type: 'redfish', pm_addr: '127.0.0.1', pm_port: String(port), pm_user: 'admin', pm_password: RF_PW, pm_verify_ca: caFile,
  });
  const file = join(dir, 'nodes.json');
  // Passwords travel in a file, never on ospctl's command line.
  writeFileSync(file, JSON.stringify({
    nodes: [
      { name: 'ipmi-1', pm_type: 'ipmi', pm_addr: '127.0.0.1', pm_port: String(ipmi.port), pm_user: 'osp', pm_password: IPMI_PW, mac: ['52:54:00:aa:00:01'] },
      { name: 'ipmi-bad', pm_type: 'ipmi', pm_addr: '127.0.0.1', pm_port: String(ipmi.port), pm_user: 'osp', pm_password: WRONG_PW },
      redfishNode('rf-1', rf.port),
      redfishNode('rf-dies', rfDying.port),
    ],
  }));
  await ok(['node', 'import', file]);
}, 90_000);

afterAll(async () => {
  await ospd?.dispose();
  await ipmi?.stop();
  await rf?.stop();
  await rfDying?.stop();
  rmSync(dir, { recursive: true, force: true });
  if (ospd) rmSync(ospd.dataDir, { recursive: true, force: true });
});

describe('BMC control through ospd and ospctl', () => {
  it('manage verifies credentials: enroll → verifying → manageable, for ipmi and redfish', async () => {
    for (const n of ['ipmi-1', 'rf-1', 'rf-dies']) {
      const out = await json<{ provision_state: string; last_error: string }>(['node', 'manage', n, '--wait']);
      expect(out.provision_state).toBe('manageable');
      expect(out.last_error).toBe('');
    }
    const ev = await history('ipmi-1');
    const prov = ev.filter((e) => e.type === 'provision');
    expect(prov.map((e) => [e.data.from, e.data.to])).toEqual([['verifying', 'manageable'], ['enroll', 'verifying']]);
    expect(prov[0].actor).toBe('admin');
    // A second manage is refused with the state and what it allows.
    const again = await ctl(['node', 'manage', 'ipmi-1']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("is 'manageable'");
    expect(again.stderr).toContain('allowed actions: inspect, provide, clean');
  }, 60_000);

  it('a wrong password sends the node back to enroll with last_error naming the auth failure, and leaks nowhere', async () => {
    const r = await ctl(['node', 'manage', 'ipmi-bad', '--wait', '-f', 'json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('credential verification failed');
    expect(JSON.parse(r.stdout).provision_state).toBe('enroll');
    const n = await show('ipmi-bad');
    expect(n.provision_state).toBe('enroll');
    expect(String(n.last_error)).toMatch(/credentials rejected/);
    expect(String(n.last_error)).toContain(`127.0.0.1:${ipmi.port}`);
    const ev = await history('ipmi-bad');
    expect(ev[0]).toMatchObject({ type: 'provision', data: { from: 'verifying', to: 'enroll', code: 'BMC_AUTH_FAILED' } });
    for (const text of [r.stdout, r.stderr, JSON.stringify(n), JSON.stringify(ev), ospd.log()]) {
      expect(text).not.toContain(WRONG_PW);
      expect(text).not.toContain(IPMI_PW);
      expect(text).not.toContain(RF_PW);
    }
  }, 60_000);

  it('drives ipmi power on, status, off and reboot, recording each action', async () => {
    const on = await json<{ power_state: string }>(['node', 'power', 'on', 'ipmi-1', '--wait']);
    expect(on.power_state).toBe('on');
    expect(ipmi.state('power')).toBe('1');
    expect((await json<{ power_state: string }>(['node', 'power', 'status', 'ipmi-1'])).power_state).toBe('on');
    // Reboot from on: the simulated chassis lands a power-off late, so an off issued while already off would land after the next on.
    expect((await json<{ power_state: string }>(['node', 'power', 'reboot', 'ipmi-1', '--wait'])).power_state).toBe('on');
    const off = await json<{ power_state: string }>(['node', 'power', 'off', 'ipmi-1', '--wait']);
    expect(off.power_state).toBe('off');
    expect(ipmi.state('power')).toBe('0');
    const power = (await history('ipmi-1')).filter((e) => e.type === 'power');
    expect(power.slice(0, 3).map((e) => e.data.action)).toEqual(['off', 'reboot', 'on']);
    for (const e of power.slice(0, 3)) {
      expect(e.actor).toBe('admin');
      expect(e.data.result).toBe('ok');
      expect(typeof e.data.durationMs).toBe('number');
    }
  }, 90_000);

  it('sets the boot device on ipmi and redfish, and refuses a bad device', async () => {
    await ok(['node', 'boot-device', 'set', 'ipmi-1', 'pxe']);
    expect(ipmi.state('boot')).toBe('pxe');
    await ok(['node', 'boot-device', 'set', 'rf-1', 'disk', '--persistent', '--mode', 'uefi']);
    const boot = (await readRedfish(rf, rf.systemPaths[0])).Boot as Record<string, string>;
    expect(boot).toMatchObject({ BootSourceOverrideTarget: 'Hdd', BootSourceOverrideEnabled: 'Continuous', BootSourceOverrideMode: 'UEFI' });
    const ev = (await history('rf-1')).find((e) => e.type === 'boot-device');
    expect(ev).toMatchObject({ actor: 'admin', data: { device: 'disk', persistent: true, mode: 'uefi', result: 'ok' } });
    const bad = await ctl(['node', 'boot-device', 'set', 'rf-1', 'floppy']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('floppy');
    expect(bad.stderr).toContain('pxe, disk or cdrom');
  }, 60_000);

  it('drives redfish power and lists history newest first', async () => {
    expect((await json<{ power_state: string }>(['node', 'power', 'on', 'rf-1', '--wait'])).power_state).toBe('on');
    expect((await json<{ power_state: string }>(['node', 'power', 'soft-off', 'rf-1', '--wait'])).power_state).toBe('off');
    const ev = await history('rf-1');
    const times = ev.map((e) => e.time);
    expect([...times].sort().reverse()).toEqual(times);
    expect(ev.filter((e) => e.type === 'power').slice(0, 2).map((e) => e.data.action)).toEqual(['soft off', 'on']);
  }, 60_000);

  it('maintenance set and unset, with the reason', async () => {
    const set = await json<{ maintenance: boolean; maintenance_reason: string }>(['node', 'maintenance', 'set', 'rf-1', '--reason', 'fan swap']);
    expect(set).toMatchObject({ maintenance: true, maintenance_reason: 'fan swap' });
    const unset = await json<{ maintenance: boolean; maintenance_reason: string }>(['node', 'maintenance', 'unset', 'rf-1']);
    expect(unset).toMatchObject({ maintenance: false, maintenance_reason: '' });
    const ev = await history('rf-1');
    expect(ev.slice(0, 2).map((e) => e.type)).toEqual(['maintenance.cleared', 'maintenance.set']);
    expect(ev[1].data.reason).toBe('fan swap');
  }, 30_000);

  it('power sync records an out-of-band change made directly on the BMC', async () => {
    await ok(['node', 'power', 'off', 'rf-1', '--wait']);
    // Someone powers the machine on through the BMC itself, not through ospd.
    const posted = await readRedfish(rf, `${rf.systemPaths[0]}/Actions/ComputerSystem.Reset`, { ResetType: 'On' });
    await waitFor('simulator on', async () => ((await readRedfish(rf, rf.systemPaths[0])).PowerState === 'On' ? true : undefined), { timeoutMs: 15_000, intervalMs: 250 })
      .catch((e) => { throw new Error(`${(e as Error).message}: reset answered ${JSON.stringify(posted)}`); });
    const ev = await waitFor('out-of-band event', async () =>
      (await history('rf-1')).find((e) => e.type === 'power.changed_out_of_band' && e.data.to === 'on'), { timeoutMs: 20_000, intervalMs: 250 }).catch(async (e) => {
      throw new Error(`${(e as Error).message}; history: ${JSON.stringify((await history('rf-1')).slice(0, 5))}`);
    });
    expect(ev.actor).toBe('server');
    expect(ev.data.from).toBe('off');
    expect((await show('rf-1')).power_state).toBe('on');
  }, 60_000);

  it('a node whose BMC dies goes to maintenance after N failed syncs and recovers when it answers', async () => {
    const port = rfDying.port;
    await rfDying.stop();
    const down = await waitFor('maintenance after failures', async () => {
      const n = await show('rf-dies');
      return n.maintenance === true ? n : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect(String(down.maintenance_reason)).toMatch(/power sync failed 2 times in a row/);
    const failed = (await history('rf-dies')).filter((e) => e.type === 'power.sync_failed');
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed[0].data.code).toBe('BMC_UNREACHABLE');

    rfDying = new RedfishSimulator({ mockupDir: MOCKUP, cert, username: 'admin', password: RF_PW, port });
    await rfDying.start();
    const up = await waitFor('recovery', async () => {
      const n = await show('rf-dies');
      return n.maintenance === false ? n : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    expect(up.maintenance_reason).toBe('');
    const ev = await history('rf-dies');
    const cleared = ev.findIndex((e) => e.type === 'maintenance.cleared');
    const set = ev.findIndex((e) => e.type === 'maintenance.set');
    expect(cleared).toBeGreaterThanOrEqual(0);
    expect(set).toBeGreaterThan(cleared);
    expect(ev[set].actor).toBe('server');
  }, 90_000);
});
