import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { IpmiDriver } from '../../server/bmc/ipmi.js';
import { BmcError, type NodeTarget } from '../../server/bmc/types.js';
import { OspError } from '../../common/errors.js';
import { IpmiSimInstance, freeUdpPort } from './ipmi-sim.js';

const PASSWORD = 'Zq7-ipmi-Secret';
const NO_RETRY = { attempts: 1, backoffMs: 0, maxBackoffMs: 0 };
let sim: IpmiSimInstance;
const drivers: IpmiDriver[] = [];

function driver(opts: ConstructorParameters<typeof IpmiDriver>[0] = {}): IpmiDriver {
  const d = new IpmiDriver({ minIntervalMs: 0, powerPollIntervalMs: 100, powerWaitTimeoutMs: 10_000, callTimeoutMs: 10_000, retry: NO_RETRY, ...opts });
  drivers.push(d);
  return d;
}
function node(extra: Partial<NodeTarget['driverInfo']> = {}): NodeTarget {
  return { uuid: 'u-1', name: 'ipmi-node', driverInfo: { address: '127.0.0.1', port: sim.port, username: 'osp', password: PASSWORD, ...extra } };
}

beforeAll(async () => {
  sim = new IpmiSimInstance('osp', PASSWORD);
  await sim.start();
});
afterAll(async () => {
  await Promise.all(drivers.map((d) => d.stop()));
  await sim?.stop();
});

describe('ipmi driver against OpenIPMI ipmi_sim', () => {
  it('falls back from suite 17 to 3, remembers it, and drives power', async () => {
    const d = driver();
    const n = node();
    expect(await d.getPowerState(n)).toBe('off');
    expect(d.rememberedSuite(n.driverInfo)).toBe(3);
    expect(await d.setPowerState(n, 'on')).toBe('on');
    expect(sim.state('power')).toBe('1');
    // The simulated BMC reports off 0.3 s late; the driver polls until it does.
    expect(await d.setPowerState(n, 'off')).toBe('off');
    expect(await d.setPowerState(n, 'reboot')).toBe('on');
    expect(await d.setPowerState(n, 'soft off')).toBe('off');
    expect(sim.calls()).toContain('set shutdown 1');
  });

  it('sets the boot device one-time and persistent', async () => {
    const d = driver();
    await d.setBootDevice(node(), { device: 'pxe', persistent: false, mode: 'uefi' });
    expect(sim.state('boot')).toBe('pxe');
    await d.setBootDevice(node(), { device: 'disk', persistent: true });
    expect(sim.state('boot')).toBe('default');
  });

  it('reports a wrong password as an auth error', async () => {
    const err = await driver().getPowerState(node({ password: 'not-it' })).catch((e) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect(err.kind).toBe('auth');
    expect(err.code).toBe('BMC_AUTH_FAILED');
    expect(err.message).toContain(`127.0.0.1:${sim.port}`);
    expect(err.message).not.toContain('not-it');
  });

  it('times out within the bound when no BMC listens', async () => {
    const port = await freeUdpPort();
    const t0 = Date.now();
    const err = await driver({ callTimeoutMs: 1500, cipherSuites: [3] }).getPowerState(node({ port })).catch((e) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect(err.kind).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it('refuses cipher suite 0 and IPMI 1.5 before any packet', async () => {
    const listener = createSocket('udp4');
    let packets = 0;
    listener.on('message', () => { packets++; });
    await new Promise<void>((r) => listener.bind(0, '127.0.0.1', () => r()));
    const port = listener.address().port;
    try {
      const d = driver();
      const e1 = await d.getPowerState(node({ port, cipher_suite: 0 })).catch((e) => e);
      expect(e1).toBeInstanceOf(OspError);
      expect(e1.code).toBe('BMC_INSECURE');
      expect(e1.message).toMatch(/cipher_suite=0/);
      const e2 = await d.getPowerState(node({ port, protocol_version: '1.5' })).catch((e) => e);
      expect(e2.code).toBe('BMC_INSECURE');
      expect(() => new IpmiDriver({ cipherSuites: [17, 0] })).toThrow(/cipher suite 0/);
      // Proving a negative: nothing may reach the BMC in this window.
      await new Promise((r) => setTimeout(r, 300));
      expect(packets).toBe(0);
    } finally {
      listener.close();
    }
  });

  it('never puts the password on any command line or in the environment', async () => {
    const port = await freeUdpPort();
    const d = driver({ callTimeoutMs: 3000, cipherSuites: [3] });
    const call = d.getPowerState(node({ port })).catch(() => undefined);
    let sawIpmitool = 0;
    const pwFiles = new Set<string>();
    const leaks: string[] = [];
    const deadline = Date.now() + 2500;
    while (Date.now() < deadline) {
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        let cmd: string;
        try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
        if (cmd.includes(PASSWORD)) leaks.push(`cmdline of ${pid}`);
        const args = cmd.split('\0');
        if (args[0].endsWith('ipmitool')) {
          sawIpmitool++;
          const f = args[args.indexOf('-f') + 1];
          if (f) pwFiles.add(f);
          try { if (readFileSync(`/proc/${pid}/environ`, 'utf8').includes(PASSWORD)) leaks.push(`environ of ${pid}`); } catch { /* gone */ }
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await call;
    expect(sawIpmitool).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
    expect(pwFiles.size).toBeGreaterThan(0);
    for (const f of pwFiles) expect(existsSync(f)).toBe(false);
  });

  it('rejects bad driver_info naming the field and the expectation', () => {
    const d = driver();
    expect(() => d.validateInfo({ address: '10 0', username: 'u', password: 'p' })).toThrow(/driver_info.address="10 0": expected/);
    expect(() => d.validateInfo({ address: 'h', port: 70000, username: 'u', password: 'p' })).toThrow(/driver_info.port=70000: expected an integer 1-65535/);
    expect(() => d.validateInfo({ address: 'h', password: 'p' })).toThrow(/driver_info.username/);
  });
});
