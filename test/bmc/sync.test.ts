import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { RedfishSimulator } from '../../lab/redfish-sim/simulator.js';
import { generateSelfSignedCert } from '../../lab/redfish-sim/tls.js';
import { RedfishDriver } from '../../server/bmc/redfish.js';
import { FakeDriver } from '../../server/bmc/fake.js';
import { DriverRegistry } from '../../server/bmc/registry.js';
import { PowerSync, POWER_FAILURE_FAULT } from '../../server/bmc/sync.js';
import { MemoryPowerSyncStore } from '../../server/bmc/sync-memory-store.js';
import { FIXTURES } from '../harness/fixtures.js';
import { waitFor } from '../harness/wait.js';
import { createLogger } from '../../common/logging.js';

const MOCKUP = `${FIXTURES}/redfish/public-catfish`;
const SIM_COUNT = 40;
const FAKE_COUNT = 160;
const sims: RedfishSimulator[] = [];
let registry: DriverRegistry;
let fake: FakeDriver;

beforeAll(async () => {
  const cert = await generateSelfSignedCert();
  for (let i = 0; i < SIM_COUNT; i++) {
    const s = new RedfishSimulator({ mockupDir: MOCKUP, cert, username: 'admin', password: 'sync-pw' });
    await s.start();
    sims.push(s);
  }
  fake = new FakeDriver();
  registry = new DriverRegistry();
  registry.register(new RedfishDriver({ retry: { attempts: 1, backoffMs: 0, maxBackoffMs: 0 }, callTimeoutMs: 5000 }));
  registry.register(fake);
});
afterAll(async () => {
  await registry?.stop();
  await Promise.all(sims.map((s) => s.stop()));
});

function count<T>(xs: T[], f: (x: T) => boolean): number { return xs.filter(f).length; }

describe('power-state sync over 200 simulated BMCs', () => {
  it('records out-of-band changes, puts failing BMCs into maintenance after N and recovers them', async () => {
    const store = new MemoryPowerSyncStore();
    sims.forEach((s, i) => store.add({ uuid: `rf-${i}`, driver: 'redfish', driverInfo: { address: '127.0.0.1', port: s.port, username: 'admin', password: 'sync-pw', verify_ca: false } }));
    for (let i = 0; i < FAKE_COUNT; i++) {
      store.add({ uuid: `fk-${i}`, driver: 'fake', driverInfo: { address: `fake-${i}` } });
      if (i < 10) fake.setBehaviour(`fake-${i}`, { delayMs: 400 });          // slow but answering
      else if (i < 20) fake.setBehaviour(`fake-${i}`, { failWith: 'unreachable' });
      else if (i === 20) fake.setBehaviour(`fake-${i}`, { delayMs: 20_000 }); // stuck
    }
    store.add({ uuid: 'operator-maint', driver: 'fake', driverInfo: { address: 'fake-op' }, maintenance: true, fault: null });
    const sync = new PowerSync(store, registry, store, { concurrency: 16, jitterMs: 5, maxFailures: 3, nodeTimeoutMs: 1000 });

    const first = await sync.sweep();
    expect(first.nodes).toBe(SIM_COUNT + FAKE_COUNT);
    expect(first.failed).toBe(11);
    expect(first.changed).toBe(0);
    // The stuck BMC costs one slot for nodeTimeoutMs, not the sweep.
    expect(first.durationMs).toBeLessThan(15_000);
    expect(store.nodes.get('rf-0')!.powerState).toBe('on');
    expect(store.nodes.get('fk-30')!.powerState).toBe('off');
    expect(store.nodes.get('operator-maint')!.powerState).toBeUndefined();

    // Out-of-band: 10 simulator systems switched off, 15 fake machines switched on.
    for (let i = 0; i < 10; i++) sims[i].setPowerState(sims[i].systemPaths[0], 'Off');
    for (let i = 30; i < 45; i++) fake.setOutOfBand(`fake-${i}`, 'on');
    const second = await sync.sweep();
    expect(second.changed).toBe(25);
    const changes = store.events.filter((e) => e.type === 'power.changed_out_of_band');
    expect(changes).toHaveLength(25);
    expect(changes).toContainEqual({ type: 'power.changed_out_of_band', uuid: 'rf-3', from: 'on', to: 'off' });
    expect(count([...store.nodes.values()], (n) => n.maintenance && n.fault === POWER_FAILURE_FAULT)).toBe(0);

    await sync.sweep();
    const inMaint = [...store.nodes.values()].filter((n) => n.maintenance && n.fault === POWER_FAILURE_FAULT).map((n) => n.uuid).sort();
    expect(inMaint).toEqual([...Array.from({ length: 10 }, (_, i) => `fk-${10 + i}`), 'fk-20'].sort());
    expect(store.nodes.get('fk-12')!.maintenanceReason).toMatch(/failed 3 times in a row: .*fake-12/);
    expect(count(store.events, (e) => e.type === 'maintenance.set')).toBe(11);

    // The BMCs answer again: power_failure_recovery takes them out of maintenance.
    for (let i = 10; i <= 20; i++) fake.setBehaviour(`fake-${i}`, {});
    const fourth = await sync.sweep();
    expect(fourth.failed).toBe(0);
    expect(count([...store.nodes.values()], (n) => n.maintenance)).toBe(1); // only the operator's
    expect(count(store.events, (e) => e.type === 'maintenance.cleared')).toBe(11);
    expect(store.nodes.get('fk-12')!.consecutiveFailures).toBe(0);
  });

  it('a BMC caught mid-transition changes nothing; the settled state is recorded once', async () => {
    const sim = sims[SIM_COUNT - 1];
    const path = sim.systemPaths[0];
    const store = new MemoryPowerSyncStore();
    store.add({ uuid: 'rf-t', driver: 'redfish', driverInfo: { address: '127.0.0.1', port: sim.port, username: 'admin', password: 'sync-pw', verify_ca: false } });
    const sync = new PowerSync(store, registry, store, { concurrency: 1, jitterMs: 0 });
    sim.setPowerState(path, 'Off');
    await sync.sweep();
    expect(store.nodes.get('rf-t')!.powerState).toBe('off');
    // Someone pressed the button: the BMC reports PoweringOn before On.
    sim.getSystem(path).PowerState = 'PoweringOn';
    expect((await sync.sweep()).changed).toBe(0);
    expect(store.nodes.get('rf-t')!.powerState).toBe('off');
    sim.setPowerState(path, 'On');
    expect((await sync.sweep()).changed).toBe(1);
    expect(store.events.filter((e) => e.type === 'power.changed_out_of_band')).toEqual([{ type: 'power.changed_out_of_band', uuid: 'rf-t', from: 'off', to: 'on' }]);
  });

  it('runs periodically between start() and stop()', async () => {
    const store = new MemoryPowerSyncStore();
    store.add({ uuid: 'a', driver: 'fake', driverInfo: { address: 'loop-a' } });
    const lines: string[] = [];
    const log = createLogger({ name: 'sync-test', level: 'info', destination: { write: (l: string) => { lines.push(l); } } });
    const sync = new PowerSync(store, registry, store, { intervalMs: 30, jitterMs: 0 }, log);
    sync.start();
    fake.setOutOfBand('loop-a', 'off');
    await waitFor('a sweep to record power off', () => store.nodes.get('a')!.powerState === 'off', { timeoutMs: 5000, intervalMs: 10 });
    fake.setOutOfBand('loop-a', 'on');
    await waitFor('the out-of-band event', () => store.events.length > 0, { timeoutMs: 5000, intervalMs: 10 });
    await sync.stop();
    expect(store.events).toContainEqual({ type: 'power.changed_out_of_band', uuid: 'a', from: 'off', to: 'on' });
    // Quiet sweeps stay at debug; the one that saw the change is one info line with the counts.
    const sweeps = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'power sync sweep');
    expect(sweeps.length).toBeGreaterThanOrEqual(1);
    expect(sweeps.every((l) => l.changed > 0 || l.failed > 0)).toBe(true);
    expect(sweeps.at(-1)).toMatchObject({ level: 30, nodes: 1, changed: 1, failed: 0 });
    const before = fake.calls;
    // Over three sweep intervals: a stopped sync must make no call in that time.
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.calls).toBe(before);
  });
});
