import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OspdProcess } from '../harness/ospd.js';
import { FakeBmcInstance } from '../bmc/fakebmc.js';

// The case end to end: pyghmi's fakebmc (Debian python3-pyghmi) answers
// a suite-17 open-session request with suite 3's algorithms; ospd, configured
// with the default 17,3, must still manage and power the node.
const PW = 'Fakebmc-e2e-Secret-5';
const WRONG_PW = 'Wrong-fakebmc-Secret-2';

let dir: string;
let fake: FakeBmcInstance;
let ospd: OspdProcess;

async function ok(args: string[]): Promise<string> {
  const r = await ospd.ctl(args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`ospctl ${args.join(' ')} → ${r.code}: ${r.stderr}`);
  return r.stdout;
}
async function json<T>(args: string[]): Promise<T> { return JSON.parse(await ok([...args, '-f', 'json'])) as T; }

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'osp-fakebmc-e2e-'));
  fake = new FakeBmcInstance('osp', PW);
  await fake.start();
  ospd = new OspdProcess(undefined, ['--bmc-min-interval-ms', '0', '--bmc-call-timeout-ms', '4000', '--power-wait-timeout-ms', '15000']);
  await ospd.start();
  const ipmiNode = (name: string, password: string) => ({
    name, pm_type: 'ipmi', pm_addr: '127.0.0.1', pm_port: String(fake.port), pm_user: 'osp', pm_password: password,
  });
  const file = join(dir, 'nodes.json');
  writeFileSync(file, JSON.stringify({ nodes: [ipmiNode('fb-1', PW), ipmiNode('fb-bad', WRONG_PW)] }));
  await ok(['node', 'import', file]);
}, 90_000);

afterAll(async () => {
  await ospd?.dispose();
  await fake?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (ospd) rmSync(ospd.dataDir, { recursive: true, force: true });
});

describe('ospd against pyghmi fakebmc (no cipher suite 17)', () => {
  it('manage reaches manageable through the fallback to suite 3, and power works', async () => {
    const managed = await json<{ provision_state: string }>(['node', 'manage', 'fb-1', '--wait']);
    expect(managed.provision_state).toBe('manageable');
    expect((await json<{ power_state: string }>(['node', 'power', 'on', 'fb-1', '--wait'])).power_state).toBe('on');
    expect(fake.state('power')).toBe('on');
    expect((await json<{ power_state: string }>(['node', 'power', 'off', 'fb-1', '--wait'])).power_state).toBe('off');
    expect(fake.state('power')).toBe('off');
  }, 60_000);

  it('a wrong password still sends the node back to enroll as an auth failure', async () => {
    const r = await ospd.ctl(['node', 'manage', 'fb-bad', '--wait', '-f', 'json'], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    const n = await json<Record<string, unknown>>(['node', 'show', 'fb-bad']);
    expect(n.provision_state).toBe('enroll');
    expect(String(n.last_error)).toMatch(/credentials rejected \(RAKP 2 HMAC is invalid\)/);
    for (const text of [r.stdout, r.stderr, JSON.stringify(n), ospd.log()]) {
      expect(text).not.toContain(WRONG_PW);
      expect(text).not.toContain(PW);
    }
  }, 60_000);
});
