import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpmiDriver } from '../../server/bmc/ipmi.js';
import { runIpmitool } from '../../server/bmc/ipmitool-runner.js';
import { classifyIpmitoolFailure } from '../../server/bmc/ipmi-answers.js';
import { BmcError, type NodeTarget } from '../../server/bmc/types.js';
import { IpmiSimInstance } from './ipmi-sim.js';
import { FakeBmcInstance } from './fakebmc.js';

// Two IPMI implementations osp did not write: OpenIPMI's ipmi_sim refuses a
// suite it lacks (no HMAC-SHA256, so no 17); pyghmi's fakebmc answers 17 with
// suite 3's algorithms. Both are driven by the real ipmitool.
const PASSWORD = 'Fb7-ipmi-Secret';
const NO_RETRY = { attempts: 1, backoffMs: 0, maxBackoffMs: 0 };
const tmp = mkdtempSync(join(tmpdir(), 'osp-ipmi-fallback-'));
const callLog = join(tmp, 'calls.log');
// Real ipmitool behind a shim that records each run's argv (the password is in a file, never argv).
const ipmitoolShim = join(tmp, 'ipmitool');
let sim: IpmiSimInstance;
let fake: FakeBmcInstance;
const drivers: IpmiDriver[] = [];

function driver(cipherSuites: number[]): IpmiDriver {
  const d = new IpmiDriver({
    ipmitoolPath: ipmitoolShim, cipherSuites, minIntervalMs: 0, powerPollIntervalMs: 100,
    powerWaitTimeoutMs: 10_000, callTimeoutMs: 15_000, retry: NO_RETRY,
  });
  drivers.push(d);
  return d;
}
function node(port: number, extra: Partial<NodeTarget['driverInfo']> = {}): NodeTarget {
  return { uuid: `u-${port}`, name: 'fallback-node', driverInfo: { address: '127.0.0.1', port, username: 'osp', password: PASSWORD, ...extra } };
}
/** The cipher suites of the ipmitool runs since the last call, in order. */
function suitesTried(): number[] {
  if (!existsSync(callLog)) return [];
  const lines = readFileSync(callLog, 'utf8').trim().split('\n');
  rmSync(callLog);
  return lines.map((l) => Number(/-C (\d+)/.exec(l)?.[1]));
}
async function answerOf(port: number, suite: number, password: string): Promise<ReturnType<typeof classifyIpmitoolFailure> | 'ok'> {
  const res = await runIpmitool('ipmitool', {
    host: '127.0.0.1', port, username: 'osp', password, cipherSuite: suite, args: ['-v', 'power', 'status'], timeoutMs: 15_000,
  });
  return res.exitCode === 0 ? 'ok' : classifyIpmitoolFailure(res.stdout, res.stderr);
}

beforeAll(async () => {
  writeFileSync(ipmitoolShim, `#!/bin/sh\necho "$*" >> '${callLog}'\nexec ipmitool "$@"\n`);
  chmodSync(ipmitoolShim, 0o700);
  sim = new IpmiSimInstance('osp', PASSWORD);
  fake = new FakeBmcInstance('osp', PASSWORD);
  await Promise.all([sim.start(), fake.start()]);
});
afterAll(async () => {
  await Promise.all(drivers.map((d) => d.stop()));
  await Promise.all([sim?.stop(), fake?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

describe('what ipmitool answers, as the driver reads it', () => {
  it('a suite the BMC lacks is a session failure with the line that says why, on both peers', async () => {
    expect(await answerOf(sim.port, 17, PASSWORD)).toEqual({ kind: 'session', answer: 'Error in open session response message : invalid authentication algorithm' });
    expect(await answerOf(fake.port, 17, PASSWORD)).toEqual({ kind: 'session', answer: 'Authentication algorithm 0x01 is not what we requested 0x03' });
    expect(await answerOf(fake.port, 1, PASSWORD)).toEqual({ kind: 'session', answer: 'Integrity algorithm 0x01 is not what we requested 0x00' });
    expect(await answerOf(sim.port, 3, PASSWORD)).toBe('ok');
    expect(await answerOf(fake.port, 3, PASSWORD)).toBe('ok');
  });

  it('a wrong password is an auth rejection on both peers', async () => {
    expect(await answerOf(sim.port, 3, 'not-it')).toEqual({ kind: 'auth', answer: 'RAKP 2 HMAC is invalid' });
    expect(await answerOf(fake.port, 3, 'not-it')).toEqual({ kind: 'auth', answer: 'RAKP 2 HMAC is invalid' });
  });
});

describe('ipmi driver cipher-suite fallback against ipmi_sim and pyghmi fakebmc', () => {
  it('fakebmc: 17,3 falls back to 3 on its algorithm answer, remembers it, and drives power', async () => {
    const d = driver([17, 3]);
    const n = node(fake.port);
    suitesTried();
    expect(await d.getPowerState(n)).toBe('off');
    expect(suitesTried()).toEqual([17, 3]);
    expect(d.rememberedSuite(n.driverInfo)).toBe(3);
    expect(await d.setPowerState(n, 'on')).toBe('on');
    expect(fake.state('power')).toBe('on');
    expect(await d.setPowerState(n, 'off')).toBe('off');
    expect(fake.state('power')).toBe('off');
    // Every run after the first went straight to the remembered suite.
    expect(new Set(suitesTried())).toEqual(new Set([3]));
  });

  it('ipmi_sim: 17,3 falls back to 3 on its refusal of 17 and drives power', async () => {
    const d = driver([17, 3]);
    const n = node(sim.port);
    suitesTried();
    expect(await d.getPowerState(n)).toBe('off');
    expect(suitesTried()).toEqual([17, 3]);
    expect(await d.setPowerState(n, 'on')).toBe('on');
    expect(sim.state('power')).toBe('1');
    expect(await d.setPowerState(n, 'off')).toBe('off');
    expect(new Set(suitesTried())).toEqual(new Set([3]));
  });

  it('a wrong password stops at the auth rejection: no further suite is tried', async () => {
    for (const port of [sim.port, fake.port]) {
      // Suite 1 would open a session on ipmi_sim: reaching it would be one more failed login.
      const d = driver([17, 3, 1]);
      suitesTried();
      const err = await d.getPowerState(node(port, { password: 'not-it' })).catch((e) => e);
      expect(err).toBeInstanceOf(BmcError);
      expect(err.kind).toBe('auth');
      expect(err.message).toContain('RAKP 2 HMAC is invalid');
      expect(err.message).not.toContain('not-it');
      expect(suitesTried()).toEqual([17, 3]);
      // Once a suite is remembered, a wrong password costs exactly one login attempt.
      await d.getPowerState(node(port));
      suitesTried();
      await expect(d.getPowerState(node(port, { password: 'not-it' }))).rejects.toMatchObject({ kind: 'auth' });
      expect(suitesTried()).toEqual([3]);
    }
  });

  it('when every suite fails, the error names each suite and what it answered', async () => {
    const cases: [number, number[], string[]][] = [
      [fake.port, [17, 1], ['Authentication algorithm 0x01 is not what we requested 0x03', 'Integrity algorithm 0x01 is not what we requested 0x00']],
      [sim.port, [17, 16], ['Error in open session response message : invalid authentication algorithm', 'Error in open session response message : invalid authentication algorithm']],
    ];
    for (const [port, suites, answers] of cases) {
      const err = await driver(suites).getPowerState(node(port)).catch((e) => e);
      expect(err).toBeInstanceOf(BmcError);
      expect(err.code).toBe('BMC_UNSUPPORTED');
      expect(err.message).toContain(`suite ${suites[0]}: ${answers[0]}; suite ${suites[1]}: ${answers[1]}`);
      expect(err.details.tried).toEqual([{ suite: suites[0], answer: answers[0] }, { suite: suites[1], answer: answers[1] }]);
    }
  });

  it('a remembered suite that later fails to open a session falls back again', async () => {
    // One address, two BMCs over time: ipmi_sim accepts suite 1, then fakebmc takes its port and does not.
    const other = new IpmiSimInstance('osp', PASSWORD);
    await other.start();
    const port = other.port;
    const d = driver([1, 3]);
    const n = node(port);
    let replacement: FakeBmcInstance | undefined;
    try {
      expect(await d.getPowerState(n)).toBe('off');
      expect(d.rememberedSuite(n.driverInfo)).toBe(1);
      await other.stop();
      replacement = new FakeBmcInstance('osp', PASSWORD);
      await replacement.start(port);
      suitesTried();
      expect(await d.getPowerState(n)).toBe('off');
      expect(suitesTried()).toEqual([1, 3]);
      expect(d.rememberedSuite(n.driverInfo)).toBe(3);
    } finally {
      await other.stop();
      await replacement?.stop();
    }
  });
});
