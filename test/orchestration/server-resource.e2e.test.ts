/**
 * OS::Osp::Server through a real ospd (buildOspd, in this process) and the
 * provisioning tests' simulated machines: each node's ramdisk is the real
 * osp-agent binary on a FakeMachine (booted whenever the node waits for its
 * ramdisk, as PXE would), and once a node is active its deployed system is
 * the real osp-agent run with the osp-agent.yaml read back from the config
 * drive written to the machine's disk.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NodeRecord } from '../../server/nodes/model.js';
import type { StackEngine } from '../../server/orchestration/engine/engine.js';
import { NodeClaims } from '../../server/orchestration/resources/node-claims.js';
import { waitFor } from '../harness/wait.js';
import { deployScene, NODE, type DeployScene } from '../provision/deploy-setup.js';
import { request, settle } from './engine-helpers.js';
import { addNode, Fleet } from './server-fleet.js';

const scenes: DeployScene[] = [];
const dirs: string[] = [];
let fleet: Fleet | undefined;

afterEach(async () => {
  await fleet?.stop();
  fleet = undefined;
  for (const s of scenes.splice(0)) await s.dispose();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** deploy-a (no profile) from the provisioning scene, and two compute nodes. */
async function scene(o: Parameters<typeof deployScene>[0] = {}): Promise<{ sc: DeployScene; stacks: StackEngine; dir: string }> {
  const sc = await deployScene(o);
  scenes.push(sc);
  // The scene's own machine is not used: the fleet boots one per ramdisk wait.
  await sc.m.halt();
  await addNode(sc, 'cmp-0', '52:54:00:de:00:10', { profile: 'compute' });
  await addNode(sc, 'cmp-1', '52:54:00:de:00:11', { profile: 'compute', boot_option: 'local' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-server-res-'));
  dirs.push(dir);
  return { sc, stacks: sc.s.ospd!.core.stacks, dir };
}

const claims = (sc: DeployScene) => sc.s.db.all<{ node_uuid: string; resource: string }>('SELECT node_uuid, resource FROM server_claims ORDER BY resource');
const states = async (sc: DeployScene) => Object.fromEntries((await sc.s.registry.list({})).nodes.map((n) => [n.name, n.provisionState]));

const THREE = `
  heat_template_version: 2018-08-31
  resources:
    a:
      type: OS::Osp::Server
      properties: {image: img-a, profile: compute, name: cmp-a}
    b:
      type: OS::Nova::Server
      properties: {image: img-a, capabilities: 'profile:compute', flavor: baremetal}
    c:
      type: OS::TripleO::Server
      properties: {image: img-a, node: ${NODE}, metadata: {role: pinned, index: 2}}
  outputs:
    nodes:
      value: [{get_attr: [a, node_name]}, {get_attr: [b, node_name]}, {get_attr: [c, node_name]}]
    hostname_a: {value: {get_attr: [a, name]}}
    profile_b: {value: {get_attr: [b, profile]}}
`;

describe('OS::Osp::Server', () => {
  it('three servers created in parallel claim three different nodes (two by profile, one pinned), complete only once active with the deployed agent connected; stack delete undeploys, cleans and releases them', async () => {
    const { sc, stacks, dir } = await scene();
    fleet = new Fleet(sc, dir);
    const f = fleet;
    // cmp-0's address from ospd's DHCP (this scene serves none, so the lease is written as the DHCP server would).
    await sc.s.db.run("INSERT INTO dhcp_leases (mac, ipv4_address, expires_at_ms, hostname, state) VALUES ('52:54:00:de:00:10', '192.0.2.50', ?, 'cmp-0', 'bound')", [Date.now() + 3_600_000]);
    await stacks.create(request('servers', { 'top.yaml': THREE }));
    // While deploying, every node is claimed by exactly one server.
    await waitFor('three claims', async () => (await claims(sc)).length === 3, { timeoutMs: 20_000 });
    const status = await settle(stacks, 'servers', 100_000);
    const detail = await stacks.get('servers');
    expect(status, `${detail.statusReason}\n${f.detail()}`).toBe('CREATE_COMPLETE');
    const out = Object.fromEntries(detail.outputs.map((o) => [o.name, o.value]));
    const [a, b, c] = out.nodes as string[];
    expect(c).toBe(NODE);
    expect(new Set([a, b])).toEqual(new Set(['cmp-0', 'cmp-1']));
    expect(out.hostname_a).toBe('cmp-a');
    expect(out.profile_b).toBe('compute');
    expect(await states(sc)).toEqual({ [NODE]: 'active', 'cmp-0': 'active', 'cmp-1': 'active' });
    // Complete means the deployed systems' agents connected: the boot watch recorded it for each node.
    for (const name of [NODE, 'cmp-0', 'cmp-1']) {
      const uuid = (await sc.s.registry.get(name)).uuid;
      expect(await sc.s.db.all("SELECT id FROM node_events WHERE node_uuid = ? AND type = 'deploy-boot'", [uuid]), name).toHaveLength(1);
    }
    const pinned = await stacks.resource('servers', 'c');
    expect(pinned.physicalId).toBe(sc.uuid);
    expect(pinned.attributes).toMatchObject({ node_uuid: sc.uuid, node_name: NODE, profile: '' });
    expect((await claims(sc)).map((x) => x.resource)).toEqual(['a', 'b', 'c']);
    const cmp0 = (await stacks.resource('servers', a === 'cmp-0' ? 'a' : 'b')).attributes;
    expect([cmp0.first_address, cmp0.networks]).toEqual(['192.0.2.50', { provisioning: ['192.0.2.50'] }]);
    expect((await stacks.resource('servers', a === 'cmp-0' ? 'b' : 'a')).attributes).toMatchObject({ first_address: '', networks: {} });

    // A new image and new metadata: updated in place, recorded, no node redeployed (no rebuild on image change was asked for).
    const deploysBefore = await sc.s.db.all("SELECT id FROM node_events WHERE type = 'deploy'");
    await stacks.update(request('servers', { 'top.yaml': THREE.replace('{image: img-a, profile: compute, name: cmp-a}', '{image: img-b, profile: compute, name: cmp-a}').replace('index: 2', 'index: 3') }));
    expect(await settle(stacks, 'servers', 30_000)).toBe('UPDATE_COMPLETE');
    const reasons = (await stacks.events('servers', {})).map((e) => `${e.resource}: ${e.statusReason}`);
    expect(reasons).toContain(`a: node ${a}: image recorded, not applied to the deployed disk (a rebuild on image change is not requested)`);
    expect(reasons).toContain(`c: node ${NODE}: metadata recorded, not applied to the deployed disk (a rebuild on image change is not requested)`);
    expect(await sc.s.db.all("SELECT id FROM node_events WHERE type = 'deploy'")).toEqual(deploysBefore);
    expect((await stacks.resource('servers', 'a')).attributes).toMatchObject({ node_name: a });
    expect(await states(sc)).toEqual({ [NODE]: 'active', 'cmp-0': 'active', 'cmp-1': 'active' });

    await stacks.delete('servers', 'test');
    const gone = await settle(stacks, 'servers', 100_000);
    expect(gone, f.detail()).toBe('GONE');
    expect(await states(sc)).toEqual({ [NODE]: 'available', 'cmp-0': 'available', 'cmp-1': 'available' });
    expect(await claims(sc)).toEqual([]);
    expect(f.errors).toEqual([]);
  }, 180_000);

  it('no node with the profile: CREATE_FAILED naming the profile and how many available nodes have it and not; nothing claimed or deployed', async () => {
    const { sc, stacks } = await scene();
    await stacks.create(request('storage', { 'top.yaml': `
      heat_template_version: 2018-08-31
      resources:
        s: {type: OS::Osp::Server, properties: {image: img-a, profile: storage}}
    ` }));
    expect(await settle(stacks, 'storage', 20_000)).toBe('CREATE_FAILED');
    const r = await stacks.resource('storage', 's');
    expect(r.status).toBe('CREATE_FAILED');
    expect(r.statusReason).toContain("no available node matches profile 'storage': 0 available nodes with it, 3 available nodes without it");
    expect(await claims(sc)).toEqual([]);
    expect(Object.values(await states(sc)).every((x) => x === 'available')).toBe(true);
  }, 60_000);

  it('bad properties and a pinned node that does not fit are refused naming the property, the value and what was expected', async () => {
    const { sc, stacks } = await scene();
    // Properties are checked once resolved, at create: the resource fails before anything is claimed.
    await stacks.create(request('bad', { 'top.yaml': `
      heat_template_version: 2018-08-31
      resources:
        s: {type: OS::Osp::Server, properties: {image: 7, ssh_keys: key, colour: blue}}
    ` }));
    expect(await settle(stacks, 'bad', 20_000)).toBe('CREATE_FAILED');
    const bad = (await stacks.resource('bad', 's')).statusReason;
    expect(bad).toContain("property 'colour': not a property of OS::Osp::Server: expected one of image, name, profile");
    expect(bad).toContain("property 'image': 7: expected an image name");
    expect(bad).toContain('property \'ssh_keys\': "key": expected a list of public keys');
    await stacks.create(request('pin', { 'top.yaml': `
      heat_template_version: 2018-08-31
      resources:
        s: {type: OS::Osp::Server, properties: {image: img-a, node: ${NODE}, profile: compute}}
    ` }));
    expect(await settle(stacks, 'pin', 20_000)).toBe('CREATE_FAILED');
    expect((await stacks.resource('pin', 's')).statusReason).toContain(`property 'node': ${NODE} does not match profile 'compute': it has profile:(none)`);
    expect(await claims(sc)).toEqual([]);
    // A deploy refused before it starts (no such image) gives the node back at once.
    await stacks.create(request('noimage', { 'top.yaml': `
      heat_template_version: 2018-08-31
      resources:
        s: {type: OS::Osp::Server, properties: {image: no-such-image, profile: compute}}
    ` }));
    expect(await settle(stacks, 'noimage', 20_000)).toBe('CREATE_FAILED');
    expect((await stacks.resource('noimage', 's')).statusReason).toContain('node cmp-0: the deploy did not start: image no-such-image: not found');
    expect(await claims(sc)).toEqual([]);
    expect((await sc.s.registry.get('cmp-0')).provisionState).toBe('available');
  }, 60_000);

  it('claims are atomic: twelve servers asking at once for the two compute nodes get exactly two claims, on two different nodes', async () => {
    const { sc } = await scene();
    const c = new NodeClaims(sc.s.db, sc.s.registry);
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => c.claim({ key: `stack/s${i}`, stackPath: 'stack', resource: `s${i}` }, { profile: 'compute' }, undefined)));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.node.name] : []));
    expect(won.sort()).toEqual(['cmp-0', 'cmp-1']);
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    expect(lost).toHaveLength(10);
    expect(lost[0]).toContain("no available node matches profile 'compute': 0 available nodes with it, 1 available node without it; 2 nodes with it are held by other servers");
    // The same owner asking again (a create repeated after a restart) gets its own node back.
    const winner = results.findIndex((r) => r.status === 'fulfilled');
    const again = await c.claim({ key: `stack/s${winner}`, stackPath: 'stack', resource: `s${winner}` }, { profile: 'compute' }, undefined);
    expect(again.node.name).toBe((results[winner] as PromiseFulfilledResult<{ node: NodeRecord }>).value.node.name);
    expect(await claims(sc)).toHaveLength(2);
  }, 60_000);
  it('an active node whose deployed agent has not connected keeps the server in progress, across an ospd restart; the agent connecting completes it on the same node', async () => {
    const { sc, stacks, dir } = await scene();
    fleet = new Fleet(sc, dir, false);
    const f = fleet;
    await stacks.create(request('one', { 'top.yaml': `
      heat_template_version: 2018-08-31
      resources:
        s: {type: OS::Osp::Server, properties: {image: img-a, profile: compute, ssh_keys: []}}
    ` }));
    await waitFor('cmp-0 active', async () => (await states(sc))['cmp-0'] === 'active', { timeoutMs: 60_000, detail: () => f.detail() });
    const waiting = await waitFor('the server waiting for the agent', async () => {
      const r = await stacks.resource('one', 's');
      return r.statusReason.includes('waiting for its deployed agent') ? r : undefined;
    }, { timeoutMs: 10_000 });
    expect(waiting.status).toBe('CREATE_IN_PROGRESS');
    expect(waiting.statusReason).toBe('node cmp-0: active, waiting for its deployed agent to connect');

    // The fleet watched the ospd that is going away; the deployed system is started by hand below.
    await f.stop();
    fleet = undefined;
    await sc.s.stop();
    await sc.s.start();
    const restarted = sc.s.ospd!.core.stacks;
    expect((await restarted.resource('one', 's')).status).toBe('CREATE_IN_PROGRESS');
    expect((await claims(sc)).map((c) => c.resource)).toEqual(['s']);
    const agent = f.agents.get('cmp-0')!;
    agent.start();
    try {
      expect(await settle(restarted, 'one', 30_000), agent.log().slice(-2000)).toBe('CREATE_COMPLETE');
      expect((await restarted.resource('one', 's')).attributes).toMatchObject({ node_name: 'cmp-0', profile: 'compute' });
      expect(await states(sc)).toMatchObject({ 'cmp-0': 'active', 'cmp-1': 'available' });
    } finally {
      await agent.stop();
    }
  }, 120_000);

  it('a deploy that fails: CREATE_FAILED with the node\'s last_error; a delete whose cleaning fails is DELETE_FAILED and keeps the claim', async () => {
    // No machine ever boots: the wait call-back (and later the clean wait) times out.
    const { sc, stacks } = await scene({ cleanWaitTimeoutMs: 1500 });
    await stacks.create(request('doomed', { 'top.yaml': `
      heat_template_version: 2018-08-31
      resources:
        s: {type: OS::Osp::Server, properties: {image: img-a, node: cmp-1}}
    ` }));
    expect(await settle(stacks, 'doomed', 30_000)).toBe('CREATE_FAILED');
    const r = await stacks.resource('doomed', 's');
    expect(r.statusReason).toMatch(/^node cmp-1: deploy failed: timed out after 1\.5 s in 'wait call-back': 52:54:00:de:00:11 never fetched the boot script/);
    expect((await sc.s.registry.get('cmp-1')).provisionState).toBe('deploy failed');

    await stacks.delete('doomed', 'test');
    expect(await settle(stacks, 'doomed', 30_000)).toBe('DELETE_FAILED');
    const d = await stacks.resource('doomed', 's');
    expect(d.statusReason).toMatch(/^node cmp-1: cleaning after the undeploy failed: timed out after 1\.5 s in 'clean wait'.*the claim is kept until the node is fixed and the delete retried$/);
    expect((await claims(sc)).map((c) => c.resource)).toEqual(['s']);
  }, 90_000);
  it('a ResourceGroup of servers: each member claims its own node, host names from %index%, refs are node uuids; scaling 2 → 1 undeploys and releases exactly the removed member\'s node', async () => {
    const { sc, stacks, dir } = await scene();
    fleet = new Fleet(sc, dir);
    const f = fleet;
    const group = (count: number) => request('oc', { 'top.yaml': `
      heat_template_version: 2018-08-31
      resources:
        computes:
          type: OS::Heat::ResourceGroup
          properties:
            count: ${count}
            resource_def:
              type: OS::TripleO::Server
              properties: {image: img-a, profile: compute, name: oc-compute-%index%}
      outputs:
        names: {value: {get_attr: [computes, node_name]}}
        hostnames: {value: {get_attr: [computes, name]}}
        refs: {value: {get_attr: [computes, refs]}}
    ` });
    await stacks.create(group(2));
    expect(await settle(stacks, 'oc', 100_000), f.detail()).toBe('CREATE_COMPLETE');
    const out = Object.fromEntries((await stacks.get('oc')).outputs.map((o) => [o.name, o.value]));
    const names = out.names as string[];
    expect([...names].sort()).toEqual(['cmp-0', 'cmp-1']);
    expect(out.hostnames).toEqual(['oc-compute-0', 'oc-compute-1']);
    const uuids = await Promise.all(names.map(async (n) => (await sc.s.registry.get(n)).uuid));
    expect(out.refs).toEqual(uuids);

    await stacks.update(group(1));
    expect(await settle(stacks, 'oc', 100_000), f.detail()).toBe('UPDATE_COMPLETE');
    expect(await states(sc)).toEqual({ [NODE]: 'available', [names[0]]: 'active', [names[1]]: 'available' });
    expect((await claims(sc)).map((c) => c.node_uuid)).toEqual([uuids[0]]);
    expect(f.errors).toEqual([]);
  }, 180_000);
  it('a deployed system that never connects: the server fails with the boot watch\'s words once deploy-boot-timeout-ms passes; the node stays active and claimed', async () => {
    const { sc, stacks, dir } = await scene({ settings: { 'deploy-boot-timeout-ms': '2000' } });
    fleet = new Fleet(sc, dir, false);
    const f = fleet;
    await stacks.create(request('silent', { 'top.yaml': `
      heat_template_version: 2018-08-31
      resources:
        s: {type: OS::Osp::Server, properties: {image: img-a, node: cmp-0}}
    ` }));
    expect(await settle(stacks, 'silent', 60_000), f.detail()).toBe('CREATE_FAILED');
    expect((await stacks.resource('silent', 's')).statusReason).toMatch(/^node cmp-0: the deployed system's agent did not connect within 2 s after the reboot \(the image is written and the node stays active\)/);
    expect((await sc.s.registry.get('cmp-0')).provisionState).toBe('active');
    expect((await claims(sc)).map((c) => c.resource)).toEqual(['s']);
  }, 90_000);
});
