import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, readdirSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedfishSimulator } from '../../lab/redfish-sim/simulator.js';
import { generateSelfSignedCert, type SelfSignedCert } from '../../lab/redfish-sim/tls.js';
import { RedfishDriver } from '../../server/bmc/redfish.js';
import { BmcError, type NodeTarget } from '../../server/bmc/types.js';
import { FIXTURES as SHARED_FIXTURES } from '../harness/fixtures.js';
import { waitFor } from '../harness/wait.js';

const FIXTURES = `${SHARED_FIXTURES}/redfish`;
const MOCKUPS = readdirSync(FIXTURES).filter((d) => d.startsWith('public-'));
const FAST = { powerPollIntervalMs: 20, retry: { attempts: 1, backoffMs: 0, maxBackoffMs: 0 }, callTimeoutMs: 5000 };

let cert: SelfSignedCert;
let dir: string;
let caPath: string;
const sims: RedfishSimulator[] = [];
const drivers: RedfishDriver[] = [];

beforeAll(async () => {
  cert = await generateSelfSignedCert();
  dir = mkdtempSync(join(tmpdir(), 'osp-rf-test-'));
  caPath = join(dir, 'ca.pem');
  writeFileSync(caPath, cert.certPem);
});
afterAll(async () => {
  await Promise.all(drivers.map((d) => d.stop()));
  await Promise.all(sims.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function sim(mockup: string, extra: Partial<ConstructorParameters<typeof RedfishSimulator>[0]> = {}): Promise<RedfishSimulator> {
  const s = new RedfishSimulator({ mockupDir: join(FIXTURES, mockup), cert, username: 'admin', password: 'pw-Secret1', ...extra });
  await s.start();
  sims.push(s);
  return s;
}
function driver(opts: ConstructorParameters<typeof RedfishDriver>[0] = {}): RedfishDriver {
  const d = new RedfishDriver({ ...FAST, ...opts });
  drivers.push(d);
  return d;
}
function node(s: RedfishSimulator, extra: Partial<NodeTarget['driverInfo']> = {}): NodeTarget {
  return { uuid: 'n1', name: 'node-1', driverInfo: { address: '127.0.0.1', port: s.port, username: 'admin', password: 'pw-Secret1', verify_ca: caPath, ...extra } };
}

describe.each(MOCKUPS)('redfish driver against DMTF mockup %s', (mockup) => {
  it('discovers the system, drives power and the boot override', async () => {
    const s = await sim(mockup, { resetDelayMs: 50 });
    const systemPath = s.systemPaths[s.systemPaths.length - 1];
    // Multi-system mockups need system_id; single-system ones are discovered.
    const n = node(s, s.systemPaths.length > 1 ? { system_id: systemPath.split('/').pop() } : {});
    const d = driver();
    await d.validate(n);
    expect(await d.getPowerState(n)).toBe('on');
    expect(await d.setPowerState(n, 'off')).toBe('off');
    expect(s.getSystem(systemPath).PowerState).toBe('Off');
    expect(await d.setPowerState(n, 'on')).toBe('on');
    expect(await d.setPowerState(n, 'reboot')).toBe('on');
    await d.setBootDevice(n, { device: 'pxe', persistent: false, mode: 'uefi' });
    const boot = s.getSystem(systemPath).Boot as Record<string, unknown>;
    expect(boot.BootSourceOverrideTarget).toBe('Pxe');
    expect(boot.BootSourceOverrideEnabled).toBe('Once');
    expect(boot.BootSourceOverrideMode).toBe('UEFI');
    await d.setBootDevice(n, { device: 'disk', persistent: true });
    expect((s.getSystem(systemPath).Boot as Record<string, unknown>).BootSourceOverrideEnabled).toBe('Continuous');
    const caps = await d.capabilities(n);
    expect(caps.powerActions).toContain('soft off');
    expect(caps.bootDevices).toContain('pxe');
  });
});

describe('redfish driver behaviour', () => {
  it('verifies the certificate by default and names the fix', async () => {
    const s = await sim('public-catfish');
    const err = await driver().getPowerState(node(s, { verify_ca: undefined })).catch((e) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect(err.message).toMatch(/TLS verification failed.*verify_ca/);
    expect(await driver().getPowerState(node(s, { verify_ca: false }))).toBe('on');
  });

  it('reports wrong credentials as an auth error naming node and BMC', async () => {
    const s = await sim('public-catfish');
    const err = await driver().getPowerState(node(s, { password: 'wrong' })).catch((e) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect(err.kind).toBe('auth');
    expect(err.code).toBe('BMC_AUTH_FAILED');
    expect(err.message).toContain(`127.0.0.1:${s.port}`);
    expect(err.message).toContain('node-1');
    expect(err.message).not.toContain('wrong');
  });

  it('reuses one session and logs in again after it expires', async () => {
    const s = await sim('public-rackmount1', { sessionTimeoutMs: 150 });
    const d = driver();
    const n = node(s);
    for (let i = 0; i < 3; i++) await d.getPowerState(n);
    expect(s.sessionCount()).toBe(1);
    // Outlive the 150 ms session timeout: expiry by time is what is under test.
    await new Promise((r) => setTimeout(r, 250));
    expect(await d.getPowerState(n)).toBe('on');
    s.expireAllSessions();
    expect(await d.getPowerState(n)).toBe('on');
    expect(s.sessionCount()).toBe(1);
  });

  it('falls back to basic auth when the service has no sessions', async () => {
    const s = await sim('public-catfish', { sessions: false });
    expect(await driver().getPowerState(node(s))).toBe('on');
    expect(s.sessionCount()).toBe(0);
  });

  it('re-reads and retries on ETag mismatch (412), bounded', async () => {
    const s = await sim('public-catfish');
    const d = driver({ etagAttempts: 3 });
    const n = node(s);
    s.raceNextPatches(2);
    await d.setBootDevice(n, { device: 'pxe', persistent: true });
    expect(s.preconditionFailures).toBe(2);
    expect((s.getSystem(s.systemPaths[0]).Boot as Record<string, unknown>).BootSourceOverrideEnabled).toBe('Continuous');
    s.raceNextPatches(10);
    const err = await d.setBootDevice(n, { device: 'disk', persistent: false }).catch((e) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect(err.bmcCode).toMatch(/PreconditionFailed|412/);
  });

  it('reports soft off as unsupported when GracefulShutdown is not allowed', async () => {
    for (const mockup of ['public-catfish', 'public-telemetry']) {
      const s = await sim(mockup, { withoutResetTypes: ['GracefulShutdown'] });
      const d = driver();
      const err = await d.setPowerState(node(s), 'soft off').catch((e) => e);
      expect(err).toBeInstanceOf(BmcError);
      expect(err.kind).toBe('unsupported');
      expect(err.code).toBe('BMC_UNSUPPORTED');
      expect((await d.capabilities(node(s))).powerActions).not.toContain('soft off');
      expect(s.getSystem(s.systemPaths[0]).PowerState).toBe('On');
    }
  });

  it('times out waiting for a late power state within the bound', async () => {
    const s = await sim('public-catfish', { resetDelayMs: 2000 });
    const t0 = Date.now();
    const err = await driver().setPowerState(node(s), 'off', { waitTimeoutMs: 200 }).catch((e) => e);
    expect(err.kind).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('an unreachable BMC gives an unreachable error', async () => {
    const s = await sim('public-catfish');
    const port = s.port;
    await s.stop();
    const err = await driver().getPowerState({ uuid: 'x', driverInfo: { address: '127.0.0.1', port, username: 'a', password: 'b', verify_ca: false } }).catch((e) => e);
    expect(err.kind).toBe('unreachable');
  });

  it('binds system power to a command', async () => {
    const pidFile = join(dir, 'vm.pid');
    const s = await sim('public-catfish', { powerCommands: { '1': { command: 'sh', args: ['-c', `echo $$ > ${pidFile}; exec sleep 30`] } } });
    const n = node(s);
    const d = driver();
    await d.setPowerState(n, 'off');
    rmSync(pidFile, { force: true });
    await d.setPowerState(n, 'on');
    await waitFor('the power command to write its pid', () => existsSync(pidFile), { timeoutMs: 5000, intervalMs: 20 });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    await d.setPowerState(n, 'off');
    const alive = () => existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`).length > 0;
    await waitFor(`power command ${pid} to end`, () => !alive(), { timeoutMs: 5000, intervalMs: 20 });
  });

  it('rejects bad driver_info with the field, value and expectation', () => {
    const d = driver();
    expect(() => d.validateInfo({ address: '' })).toThrow(/driver_info.address="".*expected/);
    expect(() => d.validateInfo({ address: 'h', username: 'u', password: 'p', verify_ca: 3 as unknown as boolean })).toThrow(/driver_info.verify_ca=3: expected true, false or a CA bundle path/);
  });
});
