/**
 * What an operator and a dashboard see of a deploy while it runs, and fast
 * track: ospd in this process with the real osp-agent binary as the ramdisk
 * (FakeMachine) and as the deployed system (AgentProcess, with the
 * osp-agent.yaml read back from the config drive it was given); the MQTT
 * feed is read by mosquitto_sub as a reader account.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentProcess } from '../harness/agent.js';
import { waitFor } from '../harness/wait.js';
import { AGENT } from '../inspection-flow/machine.js';
import { mosquittoSub, type SubProcess } from '../telemetry/helpers.js';
import { deployScene, NODE, type DeployScene } from './deploy-setup.js';
import { driveFile } from './deployed-disk.js';

const scenes: DeployScene[] = [];
const subs: SubProcess[] = [];
const agents: AgentProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  for (const p of subs.splice(0)) p.stop();
  for (const s of scenes.splice(0)) await s.dispose();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function scene(o: Parameters<typeof deployScene>[0]): Promise<DeployScene> {
  const sc = await deployScene(o);
  scenes.push(sc);
  return sc;
}

const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'osp-deploy-live-'));
  dirs.push(d);
  return d;
};

async function eventsSince(sc: DeployScene, id: number): Promise<{ id: number; type: string; message: string; data: string }[]> {
  return sc.s.db.all('SELECT id, type, message, data FROM node_events WHERE node_uuid = ? AND id > ? ORDER BY id', [sc.uuid, id]);
}
async function lastEventId(sc: DeployScene): Promise<number> {
  return (await sc.s.db.get<{ id: number }>('SELECT max(id) AS id FROM node_events WHERE node_uuid = ?', [sc.uuid]))?.id ?? 0;
}
const state = async (sc: DeployScene) => sc.s.registry.get(sc.uuid);

describe('deploy progress, the live MQTT feed, the boot watch and fast track', () => {
  it('fast track: cleaning leaves the ramdisk up; deploy goes out on its open stream with no PXE or power-on; MQTT shows each state and the write\'s percent; the deployed agent connecting ends the boot watch', async () => {
    const sc = await scene({ available: false, settings: { 'fast-track': true, 'mqtt-plain-listen': '127.0.0.1:0' } });
    const { s, m, uuid } = sc;
    const { password } = await s.ospd!.core.telemetry.accounts.create('dashboard', 'reader', 'test');
    const dir = tmp();
    const sub = mosquittoSub(dir, { port: s.ospd!.core.telemetry.ports().plain, username: 'dashboard', password, topic: `osp/nodes/${NODE}/events` });
    subs.push(sub);
    // Events are not retained: probe until the subscription is live, or provide's first one may come before it.
    const probing = setInterval(() => void s.ospd!.core.telemetry.broker.publish(`osp/nodes/${NODE}/events`, '{"probe":true}', { qos: 1 }), 100);
    try {
      await sub.waitFor((l) => l.some((x) => x.includes('"probe":true')), 15_000);
    } finally {
      clearInterval(probing);
    }
    await s.runtime.flow.provide(uuid, 'test');
    await sub.waitFor((l) => l.some((x) => x.includes('"state":"cleaning"')), 15_000);
    await waitFor('clean wait', async () => (await state(sc)).provisionState === 'clean wait', { timeoutMs: 20_000 });
    m.boot();
    const cleaned = await waitFor('available', async () => { const n = await state(sc); return n.provisionState === 'available' ? n : undefined; }, { timeoutMs: 30_000, detail: () => m.stderr });
    // Kept: powered on, still connected, token live, and the node says so.
    expect(cleaned.currentStep).toBe('fast track: ramdisk kept running for the next operation');
    expect(s.runtime.channel.isConnected(uuid)).toBe(true);
    expect(m.poweredOff).toBe(false);
    expect(cleaned.powerState).toBe('on');

    const mark = await lastEventId(sc);
    await s.ospd!.core.deploy.deploy(NODE, 'img-a', { hostname: 'live-1' }, 'test');
    const steps = new Set<string>();
    const active = await waitFor('active', async () => {
      const n = await state(sc);
      steps.add(n.currentStep);
      return n.provisionState === 'active' || n.provisionState === 'deploy failed' ? n : undefined;
    }, { timeoutMs: 60_000, intervalMs: 20, detail: () => m.stderr });
    expect([active.provisionState, active.lastError]).toEqual(['active', '']);
    const after = await eventsSince(sc, mark);
    // No boot into the ramdisk: the only BMC calls are the final boot device (disk) and the reboot.
    const bmc = after.filter((e) => e.type.startsWith('power') || e.type.startsWith('boot'));
    expect(bmc.map((e) => e.message).join('\n')).not.toMatch(/pxe|power on/i);
    expect(bmc.map((e) => e.message).join('\n')).toMatch(/disk/);
    expect(after.find((e) => e.type === 'provision' && e.message.includes('→ wait call-back'))?.data).toContain('"fastTrack":true');
    // node show had the current step while it ran.
    expect([...steps].some((x) => /^\d+% writing image to \/dev\/vda/.test(x) || x.startsWith('write image')), [...steps].join(' | ')).toBe(true);
    expect(active.currentStep).toMatch(/^wait for the deployed system's agent to connect/);

    // The feed: JSON, source ospd, every state of the deploy in order, progress with a number.
    await sub.waitFor((l) => l.some((x) => x.includes('"state":"active"')), 10_000);
    const events = sub.lines.filter((l) => !l.includes('"probe":true')).map((l) => JSON.parse(l.slice(l.indexOf(' ') + 1)) as { type: string; state: string; percent?: number; source: string; node: string });
    expect(events.every((e) => e.source === 'ospd' && e.node === NODE)).toBe(true);
    const states = events.filter((e) => e.type === 'provision').map((e) => e.state);
    expect(states.slice(states.indexOf('deploying'))).toEqual(['deploying', 'wait call-back', 'active']);
    const progress = events.filter((e) => e.type === 'progress' && e.state === 'wait call-back');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((e) => typeof e.percent === 'number' && e.percent >= 0 && e.percent <= 100)).toBe(true);
    // ospd's own events are not stored a second time as agent events.
    expect((await eventsSince(sc, mark)).filter((e) => e.type.startsWith('agent.'))).toEqual([]);

    // The deployed system: the real agent with the agent.yaml the config drive carries.
    const cfg = path.join(dir, 'agent.yaml');
    writeFileSync(cfg, driveFile(path.join(m.root, 'dev', 'vda'), 'osp-agent.yaml'), { mode: 0o600 });
    await m.halt();
    const root = path.join(dir, 'deployed-root');
    mkdirSync(root);
    const agent = new AgentProcess(AGENT, root, cfg, path.join(dir, 'agent.log'));
    agents.push(agent);
    agent.start();
    const up = await waitFor('the boot watch sees the deployed agent', async () => {
      const e = (await eventsSince(sc, mark)).find((x) => x.type === 'deploy-boot');
      return e;
    }, { timeoutMs: 30_000, detail: () => agent.log().slice(-2000) });
    expect(up.message).toMatch(/^the deployed system's agent connected \d+ s after the reboot$/);
    expect((await state(sc)).currentStep).toBe('');
    await sub.waitFor((l) => l.some((x) => x.includes('"percent":100') && x.includes('agent connected')), 10_000);
  }, 120_000);

  it('the deployed system never connects: a warning event after deploy-boot-timeout-ms, kept across an ospd restart; the node stays active', async () => {
    const sc = await scene({ settings: { 'deploy-boot-timeout-ms': '3000' } });
    const { s, m, uuid } = sc;
    await s.ospd!.core.deploy.deploy(NODE, 'img-a', {}, 'test');
    await waitFor('wait call-back', async () => (await state(sc)).provisionState === 'wait call-back', { timeoutMs: 20_000 });
    m.boot();
    await waitFor('active', async () => (await state(sc)).provisionState === 'active', { timeoutMs: 60_000, detail: () => m.stderr });
    const mark = await lastEventId(sc);
    // The watch is on disk: a restart inside the window still ends it.
    await s.stop();
    await s.start();
    const warned = await waitFor('the boot warning', async () => (await eventsSince(sc, mark)).find((e) => e.type === 'deploy-boot-timeout'), { timeoutMs: 20_000 });
    expect(warned.message).toMatch(/^the deployed system's agent did not connect within 3 s after the reboot \(the image is written and the node stays active\)/);
    const n = await state(sc);
    expect([n.provisionState, n.currentStep, n.lastError]).toEqual(['active', '', '']);
    expect(uuid).toBe(n.uuid);
  }, 120_000);

  it('fast track unused: the kept ramdisk is told to power off after fast-track-timeout-ms and its token revoked', async () => {
    const sc = await scene({ available: false, settings: { 'fast-track': true, 'fast-track-timeout-ms': '2000' } });
    const { s, m, uuid } = sc;
    await s.runtime.flow.provide(uuid, 'test');
    await waitFor('clean wait', async () => (await state(sc)).provisionState === 'clean wait', { timeoutMs: 20_000 });
    m.boot();
    await waitFor('available', async () => (await state(sc)).provisionState === 'available', { timeoutMs: 30_000, detail: () => m.stderr });
    expect(s.runtime.channel.isConnected(uuid)).toBe(true);
    expect(await s.db.get('SELECT node_uuid FROM agent_tokens WHERE node_uuid = ?', [uuid])).toBeDefined();
    // The agent's power_off, then the BMC's: both, in that order, end the kept session.
    const n = await waitFor('the ramdisk powers off', async () => { const x = await state(sc); return m.poweredOff && x.powerState === 'off' ? x : undefined; }, { timeoutMs: 15_000, detail: () => m.stderr });
    expect([n.provisionState, n.powerState, n.currentStep]).toEqual(['available', 'off', '']);
    expect(s.runtime.channel.isConnected(uuid)).toBe(false);
    expect(await s.db.get('SELECT node_uuid FROM agent_tokens WHERE node_uuid = ?', [uuid])).toBeUndefined();
    // Per node, the capability turns it off again: the next cleaning ends as without fast track.
    await s.registry.update(uuid, [{ op: 'add', path: '/capabilities/fast_track', value: 'false' }], 'test');
    await s.bmc.states.apply(uuid, 'manage', 'test', {});
    const m2 = sc.nextMachine();
    await s.runtime.flow.provide(uuid, 'test');
    await waitFor('clean wait', async () => (await state(sc)).provisionState === 'clean wait', { timeoutMs: 20_000 });
    m2.boot();
    await waitFor('available, powered off at once', async () => { const x = await state(sc); return x.provisionState === 'available' && m2.poweredOff; }, { timeoutMs: 30_000, detail: () => m2.stderr });
    expect((await state(sc)).currentStep).toBe('');
  }, 120_000);
});
