import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, createReadStream, existsSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FakeDriver } from '../../server/bmc/fake.js';
import type { ImageRuntime } from '../../server/images/runtime.js';
import { telemetryStore } from '../../server/store/telemetry.js';
import YAML from 'yaml';
import { InspectionServer } from '../inspection-flow/server.js';
import { FakeMachine } from '../inspection-flow/machine.js';
import { waitFor } from '../harness/wait.js';
import { OSPCTL, runProgram } from '../harness/ospd.js';
import { SSH_KEY } from './config-drive-helpers.js';
import { MIB, run, sparseRaw } from './images.js';
import { driveFile, sha256Range } from './deployed-disk.js';

const DISK_BYTES = 64 * MIB;
const IMAGE_BYTES = 16 * MIB;
const MAC = '52:54:00:de:00:01';
const SECTOR = 512;

const servers: InspectionServer[] = [];
const machines: FakeMachine[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const m of machines.splice(0)) await m.halt();
  for (const s of servers.splice(0)) {
    await s.stop().catch(() => undefined);
    rmSync(s.dataDir, { recursive: true, force: true });
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A 16 MiB GPT disk image with data in scattered places, as qcow2 (the config drive needs a partition table to extend). */
function makeQcow2(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-deploy-img-'));
  dirs.push(dir);
  const raw = path.join(dir, 'disk.raw');
  sparseRaw(raw, IMAGE_BYTES, [[2 * MIB, 300_000], [9 * MIB + 4096, MIB]]);
  run('sgdisk', ['-n', '1:2048:+4M', '-t', '1:8300', raw]);
  const qcow2 = path.join(dir, 'disk.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  return qcow2;
}

async function setup(cleanWaitTimeoutMs = 60_000): Promise<{ s: InspectionServer; m: FakeMachine; uuid: string; images: ImageRuntime; qcow2: string }> {
  // A deploy's wait call-back has the clean wait's timeout unless the node says otherwise.
  const s = new InspectionServer({ cleanWaitTimeoutMs });
  s.http = true;
  servers.push(s);
  await s.start();
  const n = await s.registry.create({ name: 'deploy-a', ports: [MAC], driver: 'fake', driverInfo: { address: 'fake-deploy-a' }, properties: {}, capabilities: {}, rootDevice: { name: '/dev/vda' } }, 'test');
  await s.bmc.power.manage(n.uuid, true, 'test');
  // Cleaning is the inspection tests' subject: the node is made available through the state table directly.
  for (const t of ['provide', 'wait', 'done'] as const) await s.bmc.states.apply(n.uuid, t, 'test', {});
  await telemetryStore.putFacts(s.db, n.uuid, JSON.stringify({ disks: [{ name: '/dev/vda', size: DISK_BYTES, serial: 'disk-0001' }] }), new Date().toISOString());
  const m = new FakeMachine({ macs: [MAC], diskBytes: DISK_BYTES });
  machines.push(m);
  m.bootParams(`127.0.0.1:${s.port}`, s.caSha256);
  const images = s.ospd!.parts.find((p) => p.name === 'images')!.service as ImageRuntime;
  const qcow2 = makeQcow2();
  await images.store.upload({ name: 'img-a', format: null, sizeBytes: statSync(qcow2).size, manifestJson: '' }, createReadStream(qcow2));
  return { s, m, uuid: n.uuid, images, qcow2 };
}

describe('deploy through ospd and the osp-agent ramdisk binary', () => {
  it('writes the qcow2 byte-identical to qemu-img convert, adds the config drive, boots from disk: active; undeploy cleans it back to available', async () => {
    const { s, m, uuid, qcow2 } = await setup();
    const keyFile = path.join(path.dirname(qcow2), 'key.pub');
    writeFileSync(keyFile, `# the operator's key\n${SSH_KEY}\n`);
    const deploy = runProgram(process.execPath, [OSPCTL, 'node', 'deploy', 'deploy-a', '--image', 'img-a', '--hostname', 'web-1', '--ssh-key', keyFile, '--wait', '-f', 'json'],
      { env: { OSPCTL_CONFIG: s.adminConfig }, timeoutMs: 90_000 });
    await waitFor('wait call-back', async () => (await s.registry.get(uuid)).provisionState === 'wait call-back', { timeoutMs: 20_000 });
    m.boot();
    const r = await deploy;
    expect(r.code, `${r.stderr}\n${m.stderr}`).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'deploy-a', provision_state: 'active' });
    // --wait without a terminal: plain progress lines on stderr, the answer alone on stdout.
    expect(r.stderr).toContain('deploy-a: active: done: wait call-back → active');

    const disk = path.join(m.root, 'dev', 'vda');
    const ref = path.join(path.dirname(qcow2), 'ref.raw');
    run('qemu-img', ['convert', '-O', 'raw', qcow2, ref]);
    // Adding the config drive partition rewrote the primary GPT (LBA 0-33) and moved the backup (the image's last 33 sectors); all else is as written.
    const start = 34 * SECTOR;
    const length = IMAGE_BYTES - start - 33 * SECTOR;
    expect(await sha256Range(disk, start, length)).toBe(await sha256Range(ref, start, length));
    const meta = JSON.parse(driveFile(disk, 'meta_data.json')) as Record<string, unknown>;
    expect(meta.uuid).toBe(uuid);
    expect(meta.hostname).toBe('web-1');
    expect(meta.public_keys).toEqual({ 'key-0': SSH_KEY });
    // The deployed system's token is the node's token now; the ramdisk's and the deploy token are gone.
    const agentYaml = YAML.parse(driveFile(disk, 'osp-agent.yaml')) as { node: string; token: string };
    await expect(s.ospd!.core.configs.authenticate(agentYaml.node, agentYaml.token)).resolves.toMatchObject({ uuid });
    expect(await s.db.all('SELECT * FROM deploy_tokens WHERE node_uuid = ?', [uuid])).toEqual([]);
    const fake = s.bmc.drivers.get('fake') as FakeDriver;
    expect(fake.bootOf('fake-deploy-a')).toMatchObject({ device: 'disk', persistent: true });

    // Undeploy: the deployed system's token is revoked, the machine cleaned through the ramdisk, then available.
    await m.halt();
    const m2 = new FakeMachine({ macs: [MAC], diskBytes: DISK_BYTES });
    machines.push(m2);
    m2.bootParams(`127.0.0.1:${s.port}`, s.caSha256);
    const undeploy = runProgram(process.execPath, [OSPCTL, 'node', 'undeploy', 'deploy-a', '--wait', '-f', 'json'], { env: { OSPCTL_CONFIG: s.adminConfig }, timeoutMs: 90_000 });
    await waitFor('clean wait', async () => (await s.registry.get(uuid)).provisionState === 'clean wait', { timeoutMs: 20_000 });
    await expect(s.ospd!.core.configs.authenticate(agentYaml.node, agentYaml.token)).rejects.toThrow();
    m2.boot();
    const u = await undeploy;
    expect(u.code, `${u.stderr}\n${m2.stderr}`).toBe(0);
    expect(JSON.parse(u.stdout)).toMatchObject({ provision_state: 'available' });
    expect(await s.db.all('SELECT image_name FROM node_images WHERE node_uuid = ?', [uuid])).toEqual([]);
  }, 120_000);

  it('ospd restarted in wait call-back: the deadline and the deploy survive, the machine that boots afterwards is deployed; abort revokes the deploy token', async () => {
    const { s, m, uuid } = await setup();
    await s.ospd!.core.deploy.deploy('deploy-a', 'img-a', {}, 'test');
    await waitFor('wait call-back', async () => (await s.registry.get(uuid)).provisionState === 'wait call-back', { timeoutMs: 20_000 });
    await s.stop();
    await s.start();
    expect((await s.registry.get(uuid)).provisionState).toBe('wait call-back');
    m.boot();
    const end = await waitFor('deploy end', async () => {
      const n = await s.registry.get(uuid);
      return n.provisionState === 'active' || n.provisionState === 'deploy failed' ? n : undefined;
    }, { timeoutMs: 60_000 });
    expect(end.provisionState, `${end.lastError}\n${m.stderr}`).toBe('active');

    // Rebuild (same image), then abort while waiting: the deploy token issued for the new command is gone with it.
    await m.halt();
    const m2 = new FakeMachine({ macs: [MAC], diskBytes: DISK_BYTES });
    machines.push(m2);
    m2.bootParams(`127.0.0.1:${s.port}`, s.caSha256);
    await s.ospd!.core.deploy.rebuild('deploy-a', undefined, {}, 'test');
    await waitFor('wait call-back', async () => (await s.registry.get(uuid)).provisionState === 'wait call-back', { timeoutMs: 20_000 });
    m2.boot();
    await waitFor('a deploy token', async () => (await s.db.all('SELECT * FROM deploy_tokens WHERE node_uuid = ?', [uuid])).length > 0, { timeoutMs: 20_000 });
    await s.runtime.flow.abort(uuid, 'test');
    expect((await s.registry.get(uuid)).provisionState).toBe('deploy failed');
    expect(await s.db.all('SELECT * FROM deploy_tokens WHERE node_uuid = ?', [uuid])).toEqual([]);
  }, 120_000);

  it('bad input is refused in one line before anything happens: unknown image, node not available, no disk matching the hints, disk too small, bad host name', async () => {
    const { s, uuid } = await setup();
    const deploy = s.ospd!.core.deploy;
    await expect(deploy.deploy('deploy-a', 'no-such-image', {}, 'test')).rejects.toThrow('image no-such-image: not found');
    await s.registry.update(uuid, [{ op: 'remove', path: '/root_device/name', value: '' }, { op: 'add', path: '/root_device/serial', value: 'other-disk' }], 'test');
    await expect(deploy.deploy('deploy-a', 'img-a', {}, 'test')).rejects.toThrow(/no disk matches the root device hints \{"serial":"other-disk"\}; the inventory lists: \/dev\/vda \(64\.0 MiB \(67108864 bytes\), serial disk-0001\)/);
    await s.registry.update(uuid, [{ op: 'remove', path: '/root_device/serial', value: '' }, { op: 'add', path: '/root_device/name', value: '/dev/vda' }], 'test');
    await expect(deploy.deploy('deploy-a', 'img-a', { hostname: 'bad_host' }, 'test')).rejects.toThrow('hostname: "bad_host"');
    await telemetryStore.putFacts(s.db, uuid, JSON.stringify({ disks: [{ name: '/dev/vda', size: 8 * MIB, serial: 'disk-0001' }] }), new Date().toISOString());
    await expect(deploy.deploy('deploy-a', 'img-a', {}, 'test')).rejects.toThrow('image img-a: 16.0 MiB (16777216 bytes) does not fit on /dev/vda of node deploy-a (8.0 MiB (8388608 bytes))');
    await s.bmc.states.apply(uuid, 'manage', 'test', {});
    await expect(deploy.deploy('deploy-a', 'img-a', {}, 'test')).rejects.toThrow("node deploy-a is 'manageable': cannot 'deploy' there");
    expect((await s.registry.get(uuid)).provisionState).toBe('manageable');
    expect(await s.db.all('SELECT * FROM node_images WHERE node_uuid = ?', [uuid])).toEqual([]);
  });

  it('an agent that reconnects mid-write gets a new command; the superseded command\'s result is ignored', async () => {
    const { s, uuid } = await setup();
    await s.ospd!.core.deploy.deploy('deploy-a', 'img-a', {}, 'test');
    await waitFor('wait call-back', async () => (await s.registry.get(uuid)).provisionState === 'wait call-back', { timeoutMs: 20_000 });
    // The agent's side of the stream, called as RamdiskService does.
    const first = await s.runtime.flow.streamOpened(uuid);
    const second = await s.runtime.flow.streamOpened(uuid);
    expect(first?.kind).toBe('deploy');
    expect(second?.deploy?.token).not.toBe(first?.deploy?.token);
    await s.runtime.flow.commandResult(uuid, { commandId: first!.id, status: 'succeeded', message: 'old write', percent: 100 });
    expect((await s.registry.get(uuid)).provisionState).toBe('wait call-back');
    await s.runtime.flow.commandResult(uuid, { commandId: second!.id, status: 'failed', message: 'disk on fire', percent: 0 });
    const n = await s.registry.get(uuid);
    expect([n.provisionState, n.lastError]).toEqual(['deploy failed', 'deploy failed in the ramdisk: disk on fire']);
  });

  it('a machine that never calls back: deploy failed explaining where it stopped, powered off, no pending deploy left', async () => {
    const { s, uuid } = await setup(1500);
    await s.ospd!.core.deploy.deploy('deploy-a', 'img-a', {}, 'test');
    // The state is recorded first, then the session ends (power off, pending request removed): wait for all three.
    await waitFor('deploy failed, powered off', async () => {
      const x = await s.registry.get(uuid);
      return x.provisionState === 'deploy failed' && x.powerState === 'off' && !existsSync(path.join(s.dataDir, 'deploys', `${uuid}.json`));
    }, { timeoutMs: 20_000 });
    const n = await s.registry.get(uuid);
    expect(n.lastError).toBe(`timed out after 1.5 s in 'wait call-back': ${MAC} never fetched the boot script (ospd does not serve DHCP here, so whether it got an address is unknown)`);
    expect(n.powerState).toBe('off');
    expect(existsSync(path.join(s.dataDir, 'deploys', `${uuid}.json`))).toBe(false);
  });

  it('a corrupted stored raw file: deploy failed naming both digests, powered off', async () => {
    const { s, m, uuid, images } = await setup();
    const fd = openSync(images.store.rawPath('img-a'), 'r+');
    writeSync(fd, Buffer.from('corrupt'), 0, 7, 2 * MIB + 100);
    closeSync(fd);
    const expected = (await images.store.get('img-a')).dataSha256;
    const deploy = runProgram(process.execPath, [OSPCTL, 'node', 'deploy', 'deploy-a', '--image', 'img-a', '--wait'], { env: { OSPCTL_CONFIG: s.adminConfig }, timeoutMs: 90_000 });
    await waitFor('wait call-back', async () => (await s.registry.get(uuid)).provisionState === 'wait call-back', { timeoutMs: 20_000 });
    m.boot();
    const r = await deploy;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(expected);
    // ospctl returns at the failed state; the power off that ends the session follows it.
    const n = await waitFor('powered off', async () => { const x = await s.registry.get(uuid); return x.powerState === 'off' ? x : undefined; }, { timeoutMs: 20_000 });
    expect(n.provisionState).toBe('deploy failed');
    expect(n.lastError).toContain(expected);
    expect(n.lastError).toMatch(/[0-9a-f]{64}[\s\S]*[0-9a-f]{64}/);
  }, 120_000);
});
