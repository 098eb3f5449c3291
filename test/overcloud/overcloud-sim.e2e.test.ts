/**
 * The overcloud on simulated machines (issue 13, Acceptance "Simulated"):
 * ospd in this process (buildOspd), the real bin/ospctl (dist/: `npm run
 * build` first, as `npm test` does), the default deploy/ templates, and
 * fake-driver nodes whose ramdisks and deployed systems are the real
 * osp-agent (server-fleet.ts). What each node's agent applied is read from
 * files under the agent's --root, what each agent ran from its acks, the
 * order of the steps from the stack's events. The cases are one overcloud's
 * life, in order (create, re-run, refused count, scale, node delete, a
 * changed script, a breaking change, the fix, delete): each starts from where
 * the one before left it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StackEngine } from '../../server/orchestration/engine/engine.js';
import { OSPCTL, REPO, runProgram, type RunResult } from '../harness/ospd.js';
import { AGENT } from '../inspection-flow/machine.js';
import { addNode, Fleet } from '../orchestration/server-fleet.js';
import { deployScene, type DeployScene } from '../provision/deploy-setup.js';

const STACK = 'oc';
const TEMPLATES = path.join(REPO, 'deploy');
const OSPCTL_TIMEOUT_MS = 120_000;

/** Node name → [MAC, provisioning address, profile]. */
const NODES: Record<string, [string, string, string]> = {
  'ctl-0': ['52:54:00:0c:00:10', '192.0.2.10', 'controller'],
  'cmp-0': ['52:54:00:0c:00:20', '192.0.2.20', 'compute'],
  'cmp-1': ['52:54:00:0c:00:21', '192.0.2.21', 'compute'],
  'cmp-2': ['52:54:00:0c:00:22', '192.0.2.22', 'compute'],
};

let sc: DeployScene;
let stacks: StackEngine;
let fleet: Fleet;
let dir: string;

beforeAll(async () => {
  sc = await deployScene();
  // The scene's own machine is not used: the fleet boots one per ramdisk wait. Its node (no profile) stays available.
  await sc.m.halt();
  for (const [name, [mac, addr, profile]] of Object.entries(NODES)) {
    await addNode(sc, name, mac, { profile });
    // ospd's DHCP serves none here: the lease is written as its DHCP server would.
    await sc.s.db.run("INSERT INTO dhcp_leases (mac, ipv4_address, expires_at_ms, hostname, state) VALUES (?, ?, ?, ?, 'bound')", [mac, addr, Date.now() + 3_600_000, name]);
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'osp-oc-sim-'));
  fleet = new Fleet(sc, dir);
  stacks = sc.s.ospd!.core.stacks;
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
  await sc?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function env(name: string, parameters: Record<string, unknown>): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, JSON.stringify({ parameter_defaults: parameters }));
  return file;
}

/** Counts and image for this scene: the nodes carry the default profiles (controller, compute). */
const base = (computes: number, extra: Record<string, unknown> = {}) => env(`counts-${computes}`, {
  ControllerCount: 1, ComputeCount: computes, ControllerImage: 'img-a', ComputeImage: 'img-a', ...extra,
});

async function ospctl(args: string[]): Promise<RunResult> {
  return runProgram(process.execPath, [OSPCTL, ...args], { env: { OSPCTL_CONFIG: sc.s.adminConfig }, timeoutMs: OSPCTL_TIMEOUT_MS });
}

const deploy = (...envs: string[]) => ospctl(['overcloud', 'deploy', '--templates', TEMPLATES, '--stack', STACK, ...envs.flatMap((e) => ['-e', e]), '--wait']);
const root = (node: string) => fleet.agents.get(node)!.root;
const read = (node: string, file: string) => readFileSync(path.join(root(node), file), 'utf8');
const detail = (r: RunResult) => `${r.stdout}\n${r.stderr}\n${fleet.detail()}`;
const outputs = async () => Object.fromEntries((await stacks.get(STACK)).outputs.map((o) => [o.name, o.value]));
const activeNodes = async () => (await sc.s.registry.list({})).nodes.filter((n) => n.provisionState === 'active').map((n) => n.name).sort();
const step = (resource: string) => Number(/Step(\d)$/.exec(resource)?.[1] ?? NaN);

/** Per node, the deployments its agent ran (acks of runs that executed them) since `sinceIso`. */
async function ranSince(sinceIso: string): Promise<Record<string, string[]>> {
  const rows = await sc.s.db.all<{ name: string; result: string }>(
    'SELECT n.name AS name, a.result AS result FROM config_acks a JOIN nodes n ON n.uuid = a.node_uuid WHERE a.received_at > ? ORDER BY a.revision', [sinceIso]);
  const out: Record<string, string[]> = {};
  for (const r of rows) {
    const ran = ((JSON.parse(r.result) as { deployments?: { name: string }[] }).deployments ?? []).map((d) => d.name);
    (out[r.name] ??= []).push(...ran);
  }
  for (const k of Object.keys(out)) out[k] = [...new Set(out[k])].sort();
  return out;
}

function hostsBlock(node: string): string[] {
  const text = read(node, 'etc/hosts');
  const m = /# BEGIN osp overcloud hosts\n([\s\S]*?)# END osp overcloud hosts/.exec(text);
  expect(m, `${node}: ${text}`).not.toBeNull();
  return m![1].trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' ')).sort();
}

describe('ospctl overcloud on simulated machines', () => {
  let afterCreate = 0;

  it('deploys 1 Controller + 2 Computes: agents apply the steps, every step N completes on every role before any step N+1 starts, outputs list the registered Computes', async () => {
    const t0 = Date.now();
    const r = await deploy(base(2));
    expect(r.code, detail(r)).toBe(0);
    expect((await stacks.get(STACK)).status).toBe('CREATE_COMPLETE');
    expect(await activeNodes()).toEqual(['cmp-0', 'cmp-1', 'ctl-0']);
    // --wait tells the overcloud's progress on stderr: nodes, running steps, failures.
    expect(r.stderr).toMatch(/CREATE_COMPLETE: \d+\/\d+ resources complete; nodes 3 ready; no step running; 0 failed deployments/);
    const events = await stacks.events(STACK, { limit: 10_000 });
    afterCreate = events.at(-1)!.id;

    const steps = events.filter((e) => e.stackPath === STACK && /Step\d$/.test(e.resource) && !e.resource.startsWith('Overcloud'));
    const starts = steps.filter((e) => e.status === 'CREATE_IN_PROGRESS');
    const ends = steps.filter((e) => e.status === 'CREATE_COMPLETE');
    // Both roles have steps 1 and 3 (hosts, registration) and the Controller 2 and 5: the barriers must hold across roles.
    expect(new Set(starts.map((e) => step(e.resource)))).toEqual(new Set([1, 2, 3, 5]));
    expect(new Set(starts.map((e) => e.resource.startsWith('Compute') ? 'Compute' : 'Controller'))).toEqual(new Set(['Compute', 'Controller']));
    for (const s of starts) {
      for (const e of ends.filter((x) => step(x.resource) < step(s.resource))) {
        expect(e.id, `${e.resource} completes before ${s.resource} starts`).toBeLessThan(s.id);
        expect(Date.parse(e.at)).toBeLessThanOrEqual(Date.parse(s.at));
      }
    }

    const out = await outputs();
    const registered = Object.values(out.controller_registered_computes as Record<string, string>);
    expect(registered).toEqual([`${STACK}-novacompute-0 ${STACK}-novacompute-1`]);
    const hosts = ['192.0.2.10', '192.0.2.20', '192.0.2.21'];
    for (const node of ['ctl-0', 'cmp-0', 'cmp-1']) {
      const names = hostsBlock(node);
      expect(names).toHaveLength(3);
      expect(names.map((l) => l.split(' ')[0]).sort()).toEqual(hosts);
      expect(read(node, 'etc/osp/timesync.conf')).toContain('server pool.ntp.org iburst maxpoll 10');
      expect(read(node, 'etc/sysctl.d/90-osp.conf')).toContain('net.ipv4.ip_forward = 1');
    }
    expect(read('cmp-0', 'etc/osp/registry.conf')).toBe('controller = 192.0.2.10\n');
    // The role's merged config_settings, as the node reads them.
    const get = (node: string, key: string) => execFileSync(AGENT, ['--root', root(node), 'config', 'get', key, '--type', 'json'], { encoding: 'utf8' }).trim();
    expect(JSON.parse(get('cmp-0', 'timesync::servers'))).toEqual(['pool.ntp.org']);
    expect(JSON.parse(get('ctl-0', 'registry::dir'))).toBe('/var/lib/osp-registry');
    expect(JSON.parse(get('cmp-1', 'compute_registration::conf'))).toBe('/etc/osp/registry.conf');
    expect(read('ctl-0', 'var/lib/osp-registry/endpoint')).toBe('osp-registry://192.0.2.10/var/lib/osp-registry\n');
    console.log(`overcloud create: ${Date.now() - t0} ms`);
  }, 150_000);
  it('a re-run with nothing changed re-runs nothing and says so', async () => {
    const r = await deploy(base(2));
    expect(r.code, detail(r)).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^overcloud ${STACK}: nothing changed \\(\\d+ resources up to date\\); nothing re-run\n$`));
    expect(await stacks.events(STACK, { after: afterCreate, limit: 10_000 })).toEqual([]);
  }, 60_000);

  it('a count larger than the matching available nodes is refused, at dry run too, naming the numbers; nothing changes', async () => {
    for (const dry of [['--dry-run'], []]) {
      const r = await ospctl(['overcloud', 'deploy', '--templates', TEMPLATES, '--stack', STACK, '-e', base(5), ...dry]);
      expect(r.code, detail(r)).toBe(2);
      expect(r.stderr).toContain(`overcloud ${STACK}: not enough nodes for ComputeCount 5: Compute: 3 more nodes with profile compute needed (2 deployed), 1 available; nothing was changed`);
    }
    expect(await stacks.events(STACK, { after: afterCreate, limit: 10_000 })).toEqual([]);
    expect(await activeNodes()).toEqual(['cmp-0', 'cmp-1', 'ctl-0']);
  }, 60_000);

  it('scales Compute 2 -> 3: only the new node is deployed; elsewhere only the hosts block (and the Controller\'s step-5 registry check) re-run', async () => {
    const t0 = Date.now();
    const since = new Date().toISOString();
    const r = await deploy(base(3));
    expect(r.code, detail(r)).toBe(0);
    expect(await activeNodes()).toEqual(['cmp-0', 'cmp-1', 'cmp-2', 'ctl-0']);
    const ran = await ranSince(since);
    const short = (names: string[]) => names.map((n) => n.split('.')[1]);
    // The new node gets everything; the others only what their inputs changed for: the hosts block, and on the Controller the step-5 check of the Compute list.
    expect(short(ran['cmp-2'])).toEqual(['ComputeComputeRegistrationStep3', 'ComputeConfigSettingsDeployment', 'ComputeHostsStep1', 'ComputeSysctlStep1', 'ComputeTimesyncStep1']);
    expect(short(ran['cmp-0'])).toEqual(['ComputeHostsStep1']);
    expect(short(ran['cmp-1'])).toEqual(['ComputeHostsStep1']);
    expect(short(ran['ctl-0'])).toEqual(['ControllerHostsStep1', 'ControllerRegistryStep5']);
    const deploys = await sc.s.db.all<{ name: string }>("SELECT n.name AS name FROM node_events e JOIN nodes n ON n.uuid = e.node_uuid WHERE e.type = 'deploy' AND e.time > ?", [since]);
    expect(deploys.map((d) => d.name)).toEqual(['cmp-2']);
    for (const node of ['ctl-0', 'cmp-0', 'cmp-1', 'cmp-2']) expect(hostsBlock(node), node).toHaveLength(4);
    const out = await outputs();
    expect(Object.values(out.controller_registered_computes as Record<string, string>)).toEqual([`${STACK}-novacompute-0 ${STACK}-novacompute-1 ${STACK}-novacompute-2`]);
    const st = await ospctl(['overcloud', 'status', '--stack', STACK, '-f', 'json']);
    expect(st.code, detail(st)).toBe(0);
    const status = JSON.parse(st.stdout) as { status: string; steps: string; nodes: string[] };
    expect(status).toMatchObject({ status: 'UPDATE_COMPLETE', steps: '5/5' });
    expect([...status.nodes].sort().map((n) => n.replace(/ \(node (ctl|cmp)-\d\)$/, ''))).toEqual([`Compute ${STACK}-novacompute-0`, `Compute ${STACK}-novacompute-1`, `Compute ${STACK}-novacompute-2`, `Controller ${STACK}-controller-0`]);
    console.log(`overcloud scale: ${Date.now() - t0} ms`);
  }, 150_000);
  it('node delete of a named Compute removes exactly that one: undeployed and cleaned back to available, the hosts block updated on the rest', async () => {
    const t0 = Date.now();
    const victim = (await stacks.resource(`${STACK}/ComputeServers`, '1')).attributes.node_name as string;
    const since = new Date().toISOString();
    const r = await ospctl(['overcloud', 'node', 'delete', '--templates', TEMPLATES, '--stack', STACK, '-e', base(3), `${STACK}-novacompute-1`, '--wait']);
    expect(r.code, detail(r)).toBe(0);
    expect(r.stderr).toContain('Compute: removing member(s) 1; ComputeCount 3 -> 2');
    const states = Object.fromEntries((await sc.s.registry.list({})).nodes.map((n) => [n.name, n.provisionState]));
    const stay = ['cmp-0', 'cmp-1', 'cmp-2'].filter((n) => n !== victim);
    expect(states).toMatchObject({ 'ctl-0': 'active', [victim]: 'available', [stay[0]]: 'active', [stay[1]]: 'active' });
    const members = (await stacks.resources(STACK, 1)).filter((x) => x.stackPath === `${STACK}/ComputeServers`).map((x) => x.name).sort();
    expect(members).toEqual(['0', '2']);
    const ran = await ranSince(since);
    expect(Object.keys(ran).sort()).toEqual([...stay, 'ctl-0'].sort());
    for (const n of stay) expect(ran[n].map((x) => x.split('.')[1]), n).toEqual(['ComputeHostsStep1']);
    expect(ran['ctl-0'].map((x) => x.split('.')[1])).toEqual(['ControllerHostsStep1', 'ControllerRegistryStep5']);
    for (const n of [...stay, 'ctl-0']) {
      const names = hostsBlock(n).map((l) => l.split(' ')[1]);
      expect(names, n).toEqual([`${STACK}-controller-0`, `${STACK}-novacompute-0`, `${STACK}-novacompute-2`]);
    }
    const out = await outputs();
    expect(Object.values(out.controller_registered_computes as Record<string, string>)).toEqual([`${STACK}-novacompute-0 ${STACK}-novacompute-2`]);
    console.log(`overcloud node delete: ${Date.now() - t0} ms`);
  }, 150_000);
  it('a changed service script (an operator\'s copy of deploy/) re-runs that service\'s step on every node, and nothing else', async () => {
    const copy = path.join(dir, 'deploy-copy');
    cpSync(TEMPLATES, copy, { recursive: true });
    const script = path.join(copy, 'scripts', 'timesync.sh');
    writeFileSync(script, readFileSync(script, 'utf8').replace('# written by the osp timesync service', '# written by the site timesync service'));
    const since = new Date().toISOString();
    const r = await ospctl(['overcloud', 'deploy', '--templates', copy, '--stack', STACK, '-e', base(2), '--wait']);
    expect(r.code, detail(r)).toBe(0);
    const ran = await ranSince(since);
    const nodes = ['ctl-0', ...['cmp-0', 'cmp-1', 'cmp-2'].filter((x) => fleet.agents.has(x))];
    expect(Object.keys(ran).sort()).toEqual([...nodes].sort());
    for (const n of nodes) {
      expect(ran[n].map((x) => x.split('.')[1]), n).toEqual([n === 'ctl-0' ? 'ControllerTimesyncStep1' : 'ComputeTimesyncStep1']);
      expect(read(n, 'etc/osp/timesync.conf')).toContain('# written by the site timesync service');
    }
  }, 150_000);

  it('a configuration change that breaks a service script: the update fails at that step and overcloud failures shows each node with its step, service, exit code and stderr; later steps do not start', async () => {
    const t0 = Date.now();
    const since = new Date().toISOString();
    const r = await deploy(base(2), env('no-ntp', { NtpServers: '' }));
    expect(r.code, detail(r)).toBe(1);
    expect((await stacks.get(STACK)).status).toBe('UPDATE_FAILED');
    expect(r.stderr).toMatch(/UPDATE_FAILED: \d+\/\d+ resources complete; nodes 3 ready; no step running; [1-9]\d* failed deployments?/);
    const f = await ospctl(['overcloud', 'failures', '--stack', STACK, '-f', 'json']);
    expect(f.code, detail(f)).toBe(0);
    const rows = JSON.parse(f.stdout) as Record<string, unknown>[];
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row).toMatchObject({ step: '1', service: 'Timesync', exit_code: 1 });
      expect(String(row.stderr_tail)).toContain('timesync: NtpServers is empty');
      expect(['ctl-0', 'cmp-0', 'cmp-1', 'cmp-2']).toContain(row.node);
    }
    // Step 1 failed: nothing of a later step ran anywhere.
    const ran = Object.values(await ranSince(since)).flat().map((x) => x.split('.')[1]);
    expect(ran.filter((x) => x.endsWith('TimesyncStep1')).length).toBeGreaterThan(0);
    expect(ran.filter((x) => /Step[2-5]$/.test(x))).toEqual([]);
    console.log(`overcloud failing update: ${Date.now() - t0} ms`);
  }, 150_000);
  it('the configuration fixed, a re-run completes re-running only the service that failed (and the config settings holding the value); overcloud delete undeploys every node back to available', async () => {
    const t0 = Date.now();
    const since = new Date().toISOString();
    const r = await deploy(base(2), env('ntp-fixed', { NtpServers: 'ntp1.lab' }));
    expect(r.code, detail(r)).toBe(0);
    expect((await stacks.get(STACK)).status).toBe('UPDATE_COMPLETE');
    const ran = await ranSince(since);
    for (const n of ['ctl-0', ...['cmp-0', 'cmp-1', 'cmp-2'].filter((x) => fleet.agents.has(x))]) {
      // NtpServers is in the role's config_settings too (timesync::servers): those are applied again, then the script.
      const role = n === 'ctl-0' ? 'Controller' : 'Compute';
      expect(ran[n].map((x) => x.split('.')[1]), n).toEqual([`${role}ConfigSettingsDeployment`, `${role}TimesyncStep1`]);
      expect(read(n, 'etc/osp/timesync.conf')).toContain('server ntp1.lab iburst maxpoll 10');
    }
    const f = await ospctl(['overcloud', 'failures', '--stack', STACK, '-f', 'json']);
    expect(JSON.parse(f.stdout), detail(f)).toEqual([]);

    const d = await ospctl(['overcloud', 'delete', '--stack', STACK, '--wait']);
    expect(d.code, detail(d)).toBe(0);
    await expect(stacks.get(STACK)).rejects.toThrow();
    const states = Object.fromEntries((await sc.s.registry.list({})).nodes.map((n) => [n.name, n.provisionState]));
    expect(Object.values(states).every((x) => x === 'available'), JSON.stringify(states)).toBe(true);
    expect(await sc.s.db.all('SELECT node_uuid FROM server_claims')).toEqual([]);
    expect(fleet.errors).toEqual([]);
    console.log(`overcloud fix + delete: ${Date.now() - t0} ms`);
  }, 150_000);
});
