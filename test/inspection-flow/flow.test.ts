import { afterEach, describe, expect, it } from 'vitest';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { readFileSync, rmSync } from 'node:fs';
import { Database } from '../../server/store/db.js';
import { FakeDriver } from '../../server/bmc/fake.js';
import { RamdiskServiceClient, type LookupResponse } from '../../proto/gen/osp/v1/ramdisk.js';
import { OSPCTL, runProgram } from '../harness/ospd.js';
import { parseRuleDocument } from '../../server/inspection/rules/validate.js';
import { InspectionServer } from './server.js';
import { waitFor } from '../harness/wait.js';
import { DISK_BYTES, FakeMachine, MIB } from './machine.js';

const servers: InspectionServer[] = [];
const machines: FakeMachine[] = [];

afterEach(async () => {
  for (const m of machines.splice(0)) await m.halt();
  for (const s of servers.splice(0)) {
    await s.stop().catch(() => undefined);
    rmSync(s.dataDir, { recursive: true, force: true });
  }
});

async function server(cfg: ConstructorParameters<typeof InspectionServer>[0] = {}): Promise<InspectionServer> {
  const s = new InspectionServer(cfg);
  servers.push(s);
  await s.start();
  return s;
}

function machine(opts: ConstructorParameters<typeof FakeMachine>[0], s: InspectionServer, pin = s.caSha256): FakeMachine {
  const m = new FakeMachine(opts);
  machines.push(m);
  m.bootParams(`127.0.0.1:${s.port}`, pin);
  return m;
}

/** A manageable node with the fake BMC driver. */
async function manageableNode(s: InspectionServer, name: string, mac: string): Promise<string> {
  const n = await s.registry!.create({ name, ports: [mac], driver: 'fake', driverInfo: { address: `fake-${name}` }, properties: {}, capabilities: {}, rootDevice: {} }, 'test');
  const m = await s.bmc!.power.manage(n.uuid, true, 'test');
  expect(m.provisionState).toBe('manageable');
  return n.uuid;
}

function ctl(s: InspectionServer, args: string[], timeoutMs = 60_000) {
  return runProgram(process.execPath, [OSPCTL, ...args], { env: { OSPCTL_CONFIG: s.adminConfig }, timeoutMs });
}

/** The machine's side of Lookup, over the wire like the agent. */
function lookup(s: InspectionServer, macs: string[]): Promise<LookupResponse> {
  const c = new RamdiskServiceClient(`127.0.0.1:${s.port}`, credentials.createSsl(Buffer.from(caPem(s))));
  return new Promise((resolve, reject) => c.lookup({ macs, bmcAddress: '', serial: '' }, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, (e, r) => {
    c.close();
    return e ? reject(e) : resolve(r!);
  }));
}

function caPem(s: InspectionServer): string {
  return readFileSync(`${s.dataDir}/ca.crt`, 'utf8');
}

async function events(s: InspectionServer, uuid: string): Promise<{ type: string; message: string }[]> {
  return (await s.registry!.events(uuid, 200)).reverse();
}

describe('inspection and cleaning through ospd and the osp-agent ramdisk binary', () => {
  it('inspect --wait: PXE once, power on, inventory stored, properties and ports derived, rules run, powered off, manageable', async () => {
    const s = await server();
    await s.rules!.import(parseRuleDocument(JSON.stringify([{
      description: 'three or more CPUs make a compute node',
      conditions: [{ op: 'ge', field: 'data://inventory.cpu.count', value: 3 }],
      actions: [{ action: 'set-capability', name: 'profile', value: 'compute' }],
    }]), 'test'));
    const uuid = await manageableNode(s, 'node-a', '52:54:00:aa:00:01');
    const m = machine({ macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'], cpus: 3 }, s);
    const inspect = ctl(s, ['node', 'inspect', 'node-a', '--wait', '-f', 'json']);
    // The machine boots when its BMC powers it on.
    await waitFor('power on', async () => (await s.registry!.get(uuid)).powerState === 'on', { timeoutMs: 20_000 });
    const fake = s.bmc!.drivers.get('fake') as FakeDriver;
    expect(fake.bootOf('fake-node-a')).toMatchObject({ device: 'pxe', persistent: false });
    m.boot();
    const r = await inspect;
    expect(r.code, r.stderr + m.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'node-a', provision_state: 'manageable', power_state: 'off' });
    const n = await s.registry!.get(uuid);
    expect(n.properties).toMatchObject({ cpus: 3, memoryMb: 4096 });
    expect(n.properties.cpuArch).toMatch(/^(x86_64|aarch64|ppc64le|s390x)$/);
    // The PXE NIC (BOOTIF) became a port beside the registered one.
    expect(n.ports.sort()).toEqual(['52:54:00:aa:00:01', '52:54:00:aa:00:02']);
    expect(n.capabilities.profile).toBe('compute');
    const inv = await s.db!.get<{ facts: string }>('SELECT facts FROM node_inventory WHERE node_uuid = ?', [uuid]);
    expect(JSON.parse(inv!.facts)).toMatchObject({ schema: 'osp.inventory/v1', cpu: { count: 3 } });
    // The agent got power_off on its stream and ran it, then exited.
    expect(await m.exit(10_000)).toBe(0);
    expect(m.poweredOff).toBe(true);
    const types = (await events(s, uuid)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['ramdisk-lookup', 'ramdisk-stream', 'inventory']));
    // Its token went with the state: the node has nothing for a ramdisk now.
    expect((await lookup(s, ['52:54:00:aa:00:01'])).token).toBe('');
  });

  it('provide --wait: clean wait, the agent wipes the first and last MiB of every disk, available', async () => {
    const s = await server();
    const uuid = await manageableNode(s, 'node-b', '52:54:00:bb:00:01');
    const m = machine({ macs: ['52:54:00:bb:00:01'] }, s);
    m.boot();
    const r = await ctl(s, ['node', 'provide', 'node-b', '--wait', '-f', 'json']);
    expect(r.code, r.stderr + m.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ provision_state: 'available', power_state: 'off' });
    const disk = m.disk();
    expect(disk.length).toBe(DISK_BYTES);
    expect(disk.subarray(0, MIB).every((b) => b === 0)).toBe(true);
    expect(disk.subarray(DISK_BYTES - MIB).every((b) => b === 0)).toBe(true);
    // Only metadata: the middle keeps its data.
    expect(disk.subarray(MIB, DISK_BYTES - MIB).every((b) => b === 0x5a)).toBe(true);
    // Not named like a disk: never touched.
    expect(m.disk('loop0').every((b) => b === 0x5a)).toBe(true);
    expect(await m.exit(10_000)).toBe(0);
    const msgs = (await events(s, uuid)).map((e) => e.message).join('\n');
    expect(msgs).toMatch(/metadata erase of 1 disk\(s\): .*dev\/vda/);
  });

  it('inspect times out with no agent: inspect failed, explaining that the agent never called back; powered off', async () => {
    const s = await server();
    const uuid = await manageableNode(s, 'node-c', '52:54:00:cc:00:01');
    // The per-node override beats the server's 15-minute default.
    await s.registry!.update(uuid, [{ op: 'add', path: '/capabilities/inspect_wait_timeout_ms', value: '1500' }], 'test');
    // A ramdisk that does not trust this server never gets as far as a lookup.
    const m = machine({ macs: ['52:54:00:cc:00:01'] }, s, 'ab'.repeat(32));
    m.boot();
    const r = await ctl(s, ['node', 'inspect', 'node-c', '--wait', '-f', 'json']);
    expect(r.code).toBe(1);
    const n = await s.registry!.get(uuid);
    expect(n.provisionState).toBe('inspect failed');
    expect(n.powerState).toBe('off');
    expect(n.lastError).toMatch(/timed out after 1.5 s in 'inspect wait': the ramdisk agent never called back \(no lookup from 52:54:00:cc:00:01/);
    expect(m.stderr).toMatch(/refusing to trust this server/);
  });

  it('one token per boot; abort ends the wait and revokes the token', async () => {
    const s = await server();
    const uuid = await manageableNode(s, 'node-d', '52:54:00:dd:00:01');
    await ctl(s, ['node', 'inspect', 'node-d']);
    await waitFor('inspect wait', async () => (await s.registry!.get(uuid)).provisionState === 'inspect wait', { timeoutMs: 20_000 });
    const first = await lookup(s, ['52-54-00-DD-00-01']);
    expect(first).toMatchObject({ nodeName: 'node-d', nodeUuid: uuid });
    expect(first.token).toMatch(/\S{20,}/);
    const second = await lookup(s, ['52:54:00:dd:00:01']);
    expect(second).toMatchObject({ token: '', nodeUuid: '' });
    expect(second.message).toMatch(/already looked up/);
    const ab = await ctl(s, ['node', 'abort', 'node-d', '-f', 'json']);
    expect(ab.code, ab.stderr).toBe(0);
    expect(JSON.parse(ab.stdout)).toMatchObject({ provision_state: 'inspect failed' });
    // The token from the first lookup no longer opens a command stream.
    const c = new RamdiskServiceClient(`127.0.0.1:${s.port}`, credentials.createSsl(Buffer.from(caPem(s))));
    const md = new Metadata();
    md.set('authorization', `Bearer ${first.token}`);
    md.set('osp-node', 'node-d');
    const err = await new Promise<ServiceError>((resolve) => c.commands({}, md).on('error', resolve));
    c.close();
    expect(err.details).toMatch(/authentication required/);
  });

  it('bad lookup input is refused naming the field and value', async () => {
    const s = await server();
    await expect(lookup(s, ['52:54:00:zz:00:01'])).rejects.toThrow(/macs: "52:54:00:zz:00:01": expected a MAC address/);
  });

  it('restart: inspect wait keeps its stored deadline; inspecting and cleaning fail with the restart message', async () => {
    const s = await server({ inspectWaitTimeoutMs: 4000 });
    const waiting = await manageableNode(s, 'node-w', '52:54:00:ee:00:01');
    const mid = await manageableNode(s, 'node-i', '52:54:00:ee:00:02');
    const cleaning = await manageableNode(s, 'node-k', '52:54:00:ee:00:03');
    await s.runtime!.flow.inspect(waiting, 'test');
    await waitFor('inspect wait', async () => (await s.registry!.get(waiting)).provisionState === 'inspect wait', { timeoutMs: 20_000 });
    await s.stop();
    // A crash mid-operation leaves these states behind (stop() would have finished the work).
    const db = await Database.open(`${s.dataDir}/ospd.sqlite`);
    await db.run(`UPDATE nodes SET provision_state = 'inspecting' WHERE uuid = ?`, [mid]);
    await db.run(`UPDATE nodes SET provision_state = 'cleaning' WHERE uuid = ?`, [cleaning]);
    await db.close();
    // Downtime eats into the stored deadline; a re-armed timer would not notice it.
    await new Promise((r) => setTimeout(r, 1500));
    const restartedAt = Date.now();
    await s.start();
    expect(await s.registry!.get(mid)).toMatchObject({ provisionState: 'inspect failed', lastError: 'ospd restarted mid-operation' });
    expect(await s.registry!.get(cleaning)).toMatchObject({ provisionState: 'clean failed', lastError: 'ospd restarted mid-operation' });
    expect((await s.registry!.get(waiting)).provisionState).toBe('inspect wait');
    await waitFor('inspect failed', async () => (await s.registry!.get(waiting)).provisionState === 'inspect failed', { timeoutMs: 10_000 });
    // A timer re-armed from scratch would fire 4 s after the restart; the stored deadline is earlier.
    expect(Date.now() - restartedAt).toBeLessThan(3500);
    expect((await s.registry!.get(waiting)).lastError).toMatch(/never called back/);
  });

  it('discovery on: an unknown machine becomes a node in enroll named from its serial, with inventory; a second lookup gets nothing', async () => {
    const s = await server({ discovery: true });
    const m = machine({ macs: ['52:54:00:ff:00:01'], serial: 'SN-4711', cpus: 2 }, s);
    m.boot();
    const n = await waitFor('discovered node', async () => (await s.registry!.list({})).nodes.find((x) => x.name === 'sn-4711'), { timeoutMs: 20_000 });
    expect(n.provisionState).toBe('enroll');
    expect(await m.exit(15_000)).toBe(0);
    const after = await s.registry!.get(n.uuid);
    expect(after.ports).toEqual(['52:54:00:ff:00:01']);
    expect(after.properties.cpus).toBe(2);
    expect(after.capabilities.profile).toBeUndefined();
    expect((await events(s, n.uuid)).map((e) => e.type)).toEqual(expect.arrayContaining(['discovery', 'inventory']));
    expect((await lookup(s, ['52:54:00:ff:00:01'])).token).toBe('');
  });

  it('a rule that fails inspection leaves the node in inspect failed with the rule message', async () => {
    const s = await server();
    await s.rules!.import(parseRuleDocument(JSON.stringify([{
      description: 'no tiny machines',
      conditions: [{ op: 'lt', field: 'data://inventory.memory.physical_mb', value: 8192 }],
      actions: [{ action: 'fail', message: 'needs at least 8 GiB of RAM' }],
    }]), 'test'));
    const uuid = await manageableNode(s, 'node-f', '52:54:00:f0:00:01');
    const m = machine({ macs: ['52:54:00:f0:00:01'] }, s);
    m.boot();
    const r = await ctl(s, ['node', 'inspect', 'node-f', '--wait', '-f', 'json']);
    expect(r.code).toBe(1);
    const n = await s.registry!.get(uuid);
    expect(n).toMatchObject({ provisionState: 'inspect failed', powerState: 'off' });
    expect(n.lastError).toMatch(/needs at least 8 GiB of RAM/);
    expect(await m.exit(10_000)).toBe(0);
  });

  it('discovery on: a machine matching an enrolled node by MAC attaches to it instead of creating another', async () => {
    const s = await server({ discovery: true });
    const n = await s.registry!.create({ name: 'known', ports: ['52:54:00:fe:00:01'], driver: 'fake', driverInfo: {}, properties: {}, capabilities: {}, rootDevice: {} }, 'test');
    const m = machine({ macs: ['52:54:00:fe:00:01'], serial: 'OTHER-NAME' }, s);
    m.boot();
    expect(await m.exit(15_000)).toBe(0);
    expect((await s.registry!.list({})).nodes.map((x) => x.name)).toEqual(['known']);
    const after = await s.registry!.get(n.uuid);
    expect(after).toMatchObject({ provisionState: 'enroll', properties: { cpus: 2 } });
    expect((await events(s, n.uuid)).map((e) => e.type)).toEqual(expect.arrayContaining(['discovery', 'ramdisk-lookup', 'inventory']));
  });

  it('the agent retries until ospd answers: booted while ospd is down, it cleans once ospd is back', async () => {
    const s = await server();
    const uuid = await manageableNode(s, 'node-r', '52:54:00:ab:00:01');
    const m = machine({ macs: ['52:54:00:ab:00:01'] }, s);
    await s.stop();
    m.boot();
    await waitFor('a failed connection attempt', () => /cannot reach a trusted ospd; retrying/.test(m.stderr), { timeoutMs: 10_000 });
    await s.start();
    const r = await ctl(s, ['node', 'provide', 'node-r', '--wait', '-f', 'json']);
    expect(r.code, r.stderr + m.stderr).toBe(0);
    expect((await s.registry!.get(uuid)).provisionState).toBe('available');
    expect(m.disk().subarray(0, MIB).every((b) => b === 0)).toBe(true);
  });

  it('discovery off: an unknown machine gets no token and no node', async () => {
    const s = await server();
    const r = await lookup(s, ['52:54:00:12:34:56']);
    expect(r).toMatchObject({ token: '', nodeUuid: '' });
    expect(r.message).toMatch(/discovery is off/);
    expect((await s.registry!.list({})).nodes).toHaveLength(0);
  });

  it('introspect --all-manageable --provide: every manageable node ends available', async () => {
    const s = await server();
    const a = await manageableNode(s, 'batch-0', '52:54:00:ba:00:00');
    const b = await manageableNode(s, 'batch-1', '52:54:00:ba:00:01');
    const ms = [machine({ macs: ['52:54:00:ba:00:00'] }, s), machine({ macs: ['52:54:00:ba:00:01'] }, s)];
    const r = await ctl(s, ['node', 'introspect', '--all-manageable', '--provide', '--concurrency', '1', '-f', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).map((x: { name: string }) => x.name)).toEqual(['batch-0', 'batch-1']);
    // Each machine boots once for inspection and once for cleaning (the agent exits after each power_off).
    for (const [i, uuid] of [a, b].entries()) {
      ms[i].boot();
      await waitFor(`${i} manageable or cleaning`, async () => ['cleaning', 'clean wait', 'available'].includes((await s.registry!.get(uuid)).provisionState), { timeoutMs: 20_000 });
      expect(await ms[i].exit(10_000)).toBe(0);
      ms[i].boot();
      await waitFor(`${i} available`, async () => (await s.registry!.get(uuid)).provisionState === 'available', { timeoutMs: 20_000 });
    }
    expect((await s.registry!.get(a)).properties.cpus).toBe(2);
  });
});
