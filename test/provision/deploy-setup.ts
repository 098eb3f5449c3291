/**
 * One deploy scene for the e2e tests: ospd in this process (InspectionServer,
 * with its HTTP listener), a fake-driver node with one disk in its stored
 * inventory, a FakeMachine whose real osp-agent ramdisk binary writes to a
 * file, and a small GPT qcow2 uploaded as `img-a`.
 */
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImageRuntime } from '../../server/images/runtime.js';
import { telemetryStore } from '../../server/store/telemetry.js';
import { InspectionServer } from '../inspection-flow/server.js';
import { FakeMachine } from '../inspection-flow/machine.js';
import { MIB, run, sparseRaw } from './images.js';

export const DISK_BYTES = 64 * MIB;
export const IMAGE_BYTES = 16 * MIB;
export const MAC = '52:54:00:de:00:01';
export const NODE = 'deploy-a';

export interface DeployScene {
  s: InspectionServer;
  m: FakeMachine;
  uuid: string;
  images: ImageRuntime;
  qcow2: string;
  /** A fresh machine (same MAC and disk size) for the next boot, cleaned up with the scene. */
  nextMachine(): FakeMachine;
  dispose(): Promise<void>;
}

/** A 16 MiB GPT disk image with data in scattered places, as qcow2 (the config drive needs a partition table to extend). */
export function makeQcow2(dir: string): string {
  const raw = path.join(dir, 'disk.raw');
  sparseRaw(raw, IMAGE_BYTES, [[2 * MIB, 300_000], [9 * MIB + 4096, MIB]]);
  run('sgdisk', ['-n', '1:2048:+4M', '-t', '1:8300', raw]);
  const qcow2 = path.join(dir, 'disk.qcow2');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  return qcow2;
}

/**
 * `available` says whether the node is made available through the state
 * table directly (cleaning is the inspection tests' subject) or left
 * `manageable` for the test to provide.
 */
export async function deployScene(o: { settings?: Record<string, string | boolean>; cleanWaitTimeoutMs?: number; available?: boolean } = {}): Promise<DeployScene> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-deploy-img-'));
  const s = new InspectionServer({ cleanWaitTimeoutMs: o.cleanWaitTimeoutMs ?? 60_000 });
  s.http = true;
  s.settings = o.settings ?? {};
  const machines: FakeMachine[] = [];
  const dispose = async () => {
    for (const m of machines) await m.halt();
    await s.stop().catch(() => undefined);
    rmSync(s.dataDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await s.start();
    const n = await s.registry.create({ name: NODE, ports: [MAC], driver: 'fake', driverInfo: { address: `fake-${NODE}` }, properties: {}, capabilities: {}, rootDevice: { name: '/dev/vda' } }, 'test');
    await s.bmc.power.manage(n.uuid, true, 'test');
    if (o.available !== false) for (const t of ['provide', 'wait', 'done'] as const) await s.bmc.states.apply(n.uuid, t, 'test', {});
    await telemetryStore.putFacts(s.db, n.uuid, JSON.stringify({ disks: [{ name: '/dev/vda', size: DISK_BYTES, serial: 'disk-0001' }] }), new Date().toISOString());
    const nextMachine = () => {
      const m = new FakeMachine({ macs: [MAC], diskBytes: DISK_BYTES });
      machines.push(m);
      m.bootParams(`127.0.0.1:${s.port}`, s.caSha256);
      return m;
    };
    const images = s.ospd!.parts.find((p) => p.name === 'images')!.service as ImageRuntime;
    const qcow2 = makeQcow2(dir);
    await images.store.upload({ name: 'img-a', format: null, sizeBytes: statSync(qcow2).size, manifestJson: '' }, createReadStream(qcow2));
    return { s, m: nextMachine(), uuid: n.uuid, images, qcow2, nextMachine, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}
