import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import YAML from 'yaml';
import { createLogger } from '../../common/logging.js';
import { MASK, SecretBox } from '../../server/security/secrets.js';
import { BmcServiceService } from '../../proto/gen/osp/v1/bmc.js';
import { NodeServiceService, NodeSpec } from '../../proto/gen/osp/v1/node.js';
import { InspectionServiceService, RamdiskServiceService } from '../../proto/gen/osp/v1/ramdisk.js';
import { PxeServiceService } from '../../proto/gen/osp/v1/pxe.js';
import { RuleServiceService } from '../../proto/gen/osp/v1/rules.js';
import { ProvisionServiceService } from '../../proto/gen/osp/v1/provision.js';
import type { ImageRuntime } from '../../server/images/runtime.js';
import { telemetryStore } from '../../server/store/telemetry.js';
import { IpmiSimInstance } from '../bmc/ipmi-sim.js';
import { REPO } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';
import { InspectionServer } from '../inspection-flow/server.js';
import { contractRpcs } from './node-rpcs.js';

// Issue #15: masking used to be opt-in per service and four answers carried
// the stored ciphertext. Every answer that holds a node is checked here, on
// the wire, for a node whose password is known; a new RPC answering with a
// node fails the first test until it is called below.
const PASSWORD = 'Msk-Secret-4711x';
const NEW_PASSWORD = 'Msk-Rotated-0815';

const NODE_RPCS = [
  NodeServiceService.createNode, NodeServiceService.getNode, NodeServiceService.listNodes, NodeServiceService.updateNode,
  NodeServiceService.importNodes, NodeServiceService.listNodeEvents,
  BmcServiceService.getPowerState, BmcServiceService.setPowerState, BmcServiceService.setBootDevice,
  BmcServiceService.manageNode, BmcServiceService.setMaintenance,
  InspectionServiceService.inspectNode, InspectionServiceService.provideNode, InspectionServiceService.abortNode,
  InspectionServiceService.introspectManageable,
  ProvisionServiceService.deployNode, ProvisionServiceService.rebuildNode, ProvisionServiceService.undeployNode,
].map((m) => m.path as string);

interface Method<Req, Res> {
  path: string;
  requestSerialize(v: Req): Buffer;
  requestDeserialize(b: Buffer): Req;
  responseDeserialize(b: Buffer): Res;
}

let server: InspectionServer;
let sim: IpmiSimInstance;
let client: Client;
let token = '';
let logText = '';
const ciphertexts = new Set<string>();
/** gRPC paths whose answers passed the check. */
const checked = new Set<string>();

/** Every sealed value in the store now; kept across calls, so an old ciphertext stays forbidden after a password change. */
async function readCiphertexts(): Promise<void> {
  const rows = await server.db.all<{ driver_info: string }>('SELECT driver_info FROM nodes');
  for (const r of rows) for (const v of Object.values(JSON.parse(r.driver_info) as Record<string, string>)) if (SecretBox.isSealed(v)) ciphertexts.add(v);
}

function forbidden(): [string, string][] {
  return [['the password', PASSWORD], ['the new password', NEW_PASSWORD], ['an enc:v1: value', 'enc:v1:'],
    ...[...ciphertexts].map((c): [string, string] => ['the stored ciphertext', c])];
}

function assertClean(what: string, text: string | Buffer): void {
  for (const [label, s] of forbidden()) expect(text.includes(s), `${what} carries ${label}`).toBe(false);
}

/** Every object in an answer that has a driverInfo: the nodes it holds. */
function nodesIn(v: unknown): { driverInfo: Record<string, string> }[] {
  if (!v || typeof v !== 'object') return [];
  if (Array.isArray(v)) return v.flatMap(nodesIn);
  const o = v as Record<string, unknown>;
  return 'driverInfo' in o ? [o as { driverInfo: Record<string, string> }] : Object.values(o).flatMap(nodesIn);
}

/**
 * One call over gRPC/TLS with the admin token. The answer is taken as the raw
 * bytes off the wire (checked as they are) and then decoded (checked as
 * JSON); a refusal's message and metadata are checked before it is thrown.
 */
async function call<Req, Res>(m: Method<Req, Res>, fields: Partial<Req>): Promise<Res> {
  // Decoding zero bytes yields the message's defaults, so a call names only the fields it sets.
  const req = { ...m.requestDeserialize(Buffer.alloc(0)), ...fields } as Req;
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  const raw = await new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(m.path, m.requestSerialize, (b: Buffer) => b, req, md, { deadline: new Date(Date.now() + 20_000) },
      (e: ServiceError | null, r?: Buffer) => {
        if (!e) return resolve(r!);
        assertClean(`${m.path} refusal`, `${e.details}\n${JSON.stringify(e.metadata?.toJSON() ?? {})}`);
        reject(new Error(`${m.path}: ${e.details}`));
      });
  });
  await readCiphertexts();
  assertClean(`${m.path} answer bytes`, raw);
  const answer = m.responseDeserialize(raw);
  assertClean(`${m.path} answer`, JSON.stringify(answer));
  for (const n of nodesIn(answer)) expect(n.driverInfo.password, `${m.path}: a node's password`).toBe(MASK);
  if (NODE_RPCS.includes(m.path) && !m.path.endsWith('/ListNodeEvents')) expect(nodesIn(answer).length, `${m.path}: nodes in the answer`).toBeGreaterThan(0);
  checked.add(m.path);
  return answer;
}

const fakeSpec = (name: string, mac: string) => NodeSpec.fromPartial({
  name, driver: 'fake', ports: [mac], driverInfo: { address: `fake-${name}`, username: 'admin', password: PASSWORD },
});

beforeAll(async () => {
  sim = new IpmiSimInstance('osp', PASSWORD);
  await sim.start();
  const log = createLogger({ name: 'ospd', level: 'trace', destination: { write: (s: string) => { logText += s; } } });
  server = new InspectionServer({}, undefined, log);
  // Deploys fetch images from the HTTP listener; ospd refuses to deploy without it.
  server.http = true;
  await server.start();
  const admin = YAML.parse(readFileSync(server.adminConfig, 'utf8')) as { ca: string; token: string };
  token = admin.token;
  client = new Client(`127.0.0.1:${server.port}`, credentials.createSsl(Buffer.from(admin.ca)));
}, 60_000);

afterAll(async () => {
  client?.close();
  await server?.stop();
  await sim?.stop();
  if (server) rmSync(server.dataDir, { recursive: true, force: true });
});

describe('no answer carries a BMC password or its ciphertext', () => {
  it('every RPC of the contract whose answer holds a Node or NodeEvent is called by this test', async () => {
    const rpcs = contractRpcs();
    // The descriptor set is what the walk reads; a stale one would hide a new RPC, so it must match the generated services.
    const generated: string[] = [];
    const dir = path.join(REPO, 'proto', 'gen', 'osp', 'v1');
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const mod = await import(path.join(dir, f)) as Record<string, unknown>;
      for (const [name, svc] of Object.entries(mod)) {
        if (name.endsWith('Service') && svc && typeof svc === 'object') generated.push(...Object.values(svc as Record<string, { path?: string }>).flatMap((m) => m.path ?? []));
      }
    }
    expect(generated.sort()).toEqual(rpcs.map((r) => r.path).sort());
    const uncovered = rpcs.filter((r) => r.answersWithNode && !NODE_RPCS.includes(r.path)).map((r) => r.path);
    expect(uncovered, 'RPCs answering with a node that this test does not call').toEqual([]);
  });

  it('node records: create, get, list, update (a new password too), import (created, updated, unchanged)', async () => {
    await call(NodeServiceService.createNode, { spec: fakeSpec('fake-a', '52:54:00:0a:00:01') });
    await call(NodeServiceService.createNode, { spec: NodeSpec.fromPartial({
      name: 'ipmi-1', driver: 'ipmi', ports: ['52:54:00:0a:00:09'],
      // ipmi_sim has no suite 17, and the harness configures ospd with 17 alone.
      driverInfo: { address: '127.0.0.1', port: String(sim.port), username: 'osp', password: PASSWORD, cipher_suite: '3' },
    }) });
    const file = (cpu: number) => JSON.stringify({ nodes: [
      { name: 'fake-b', pm_type: 'fake', pm_addr: 'fake-b', pm_user: 'admin', pm_password: PASSWORD, mac: ['52:54:00:0a:00:02'] },
      { name: 'fake-c', pm_type: 'fake', pm_addr: 'fake-c', pm_user: 'admin', pm_password: PASSWORD, mac: ['52:54:00:0a:00:03'], cpu },
    ] });
    expect((await call(NodeServiceService.importNodes, { content: file(2), source: 'nodes.json' })).created).toHaveLength(2);
    const again = await call(NodeServiceService.importNodes, { content: file(4), source: 'nodes.json' });
    expect([again.unchanged.map((n) => n.name), again.updated.map((n) => n.name)]).toEqual([['fake-b'], ['fake-c']]);
    await call(NodeServiceService.getNode, { id: 'fake-a' });
    await call(NodeServiceService.getNode, { id: 'ipmi-1' });
    expect((await call(NodeServiceService.listNodes, {})).nodes).toHaveLength(4);
    await call(NodeServiceService.updateNode, { id: 'fake-a', patch: [{ op: 'add', path: '/capabilities/profile', value: 'compute' }] });
    const before = [...ciphertexts];
    await call(NodeServiceService.updateNode, { id: 'fake-c', patch: [{ op: 'replace', path: '/driver_info/password', value: NEW_PASSWORD }] });
    // The change really stored a new secret (else NEW_PASSWORD would be checked against nothing).
    expect([...ciphertexts].filter((c) => !before.includes(c))).toHaveLength(1);
  });

  it('BMC: power state, power, boot device, maintenance and manage, on fake and on ipmi (ipmi_sim)', async () => {
    for (const id of ['fake-a', 'ipmi-1']) {
      await call(BmcServiceService.getPowerState, { id });
      await call(BmcServiceService.setPowerState, { id, action: 'on', wait: true });
      await call(BmcServiceService.setPowerState, { id, action: 'off', wait: true });
      await call(BmcServiceService.setBootDevice, { id, device: 'pxe' });
      await call(BmcServiceService.setMaintenance, { id, on: true, reason: 'masking test' });
      await call(BmcServiceService.setMaintenance, { id, on: false });
    }
    for (const id of ['fake-a', 'fake-b', 'fake-c', 'ipmi-1']) {
      expect((await call(BmcServiceService.manageNode, { id, wait: true })).provisionState).toBe('manageable');
    }
  }, 60_000);

  it('inspection: inspect, the ramdisk lookup, abort, provide, introspect the manageable ones', async () => {
    expect((await call(InspectionServiceService.inspectNode, { node: 'fake-a' })).provisionState).toMatch(/^inspect/);
    const found = await waitFor('a ramdisk lookup token for fake-a', async () => {
      const f = await call(RamdiskServiceService.lookup, { macs: ['52:54:00:0a:00:01'] });
      return f.token ? f : undefined;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    expect(found.nodeName).toBe('fake-a');
    await call(InspectionServiceService.abortNode, { node: 'fake-a' });
    await call(InspectionServiceService.provideNode, { node: 'fake-b' });
    const batch = await call(InspectionServiceService.introspectManageable, { provide: false });
    expect(batch.nodes.map((n) => n.name).sort()).toEqual(['fake-c', 'ipmi-1']);
  }, 60_000);

  it('history and the other answers about nodes', async () => {
    for (const id of ['fake-a', 'fake-b', 'fake-c', 'ipmi-1']) {
      const events = (await call(NodeServiceService.listNodeEvents, { id, limit: 1000 })).events;
      expect(events.length).toBeGreaterThan(0);
      await call(PxeServiceService.getBootLog, { id });
    }
    await call(RuleServiceService.listProfiles, {});
    await call(RuleServiceService.previewRules, {});
    await call(NodeServiceService.listNodes, {});
  });

  it('provision: deploy, abort, rebuild, undeploy', async () => {
    await call(NodeServiceService.createNode, { spec: fakeSpec('fake-d', '52:54:00:0a:00:04') });
    const uuid = (await server.registry.get('fake-d')).uuid;
    await server.bmc.power.manage(uuid, true, 'test');
    for (const t of ['provide', 'wait', 'done'] as const) await server.bmc.states.apply(uuid, t, 'test', {});
    await telemetryStore.putFacts(server.db, uuid, JSON.stringify({ disks: [{ name: '/dev/sda', size: 8 * 1024 ** 3, serial: 'm-1' }] }), new Date().toISOString());
    const images = server.ospd!.parts.find((p) => p.name === 'images')!.service as ImageRuntime;
    await images.store.upload({ name: 'mask-img', format: null, sizeBytes: 1024 * 1024, manifestJson: '' }, Readable.from([Buffer.alloc(1024 * 1024, 1)]));
    const callBack = () => waitFor('wait call-back', async () => (await server.registry.get(uuid)).provisionState === 'wait call-back', { timeoutMs: 20_000 });
    expect((await call(ProvisionServiceService.deployNode, { node: 'fake-d', image: 'mask-img' })).node?.provisionState).toBe('deploying');
    await callBack();
    await call(InspectionServiceService.abortNode, { node: 'fake-d' });
    expect((await call(ProvisionServiceService.rebuildNode, { node: 'fake-d' })).node?.provisionState).toBe('deploying');
    await callBack();
    await call(InspectionServiceService.abortNode, { node: 'fake-d' });
    expect((await call(ProvisionServiceService.undeployNode, { node: 'fake-d' })).node?.provisionState).toBe('deleting');
  }, 60_000);

  it('every RPC answering with a node was called and its answer checked; the log never shows a secret', async () => {
    expect(NODE_RPCS.filter((p) => !checked.has(p)), 'node RPCs not called').toEqual([]);
    await readCiphertexts();
    expect(logText).toMatch(/ManageNode|manageable/);
    assertClean('ospd log', logText);
  });
});
