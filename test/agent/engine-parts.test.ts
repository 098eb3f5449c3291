import { cp, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Applier } from '../../agent/apply/applier.js';
import { parseControl } from '../../agent/apply/control.js';
import { parseCmdline } from '../../agent/collect/cmdline.js';
import { deepMerge } from '../../agent/collect/merge.js';
import type { RunResult } from '../../agent/engine.js';
import { RunLock } from '../../agent/refresh/lock.js';
import { runnableScripts } from '../../agent/refresh/refresher.js';
import { AgentRunner } from '../../agent/runner.js';
import { put, removeRoot, tempRoot } from './helpers.js';
import { FIXTURES as SHARED_FIXTURES } from '../harness/fixtures.js';
import { waitFor } from '../harness/wait.js';

const FIXTURES = `${SHARED_FIXTURES}/os-config/os-apply-config`;
const roots: string[] = [];
async function newRoot(): Promise<string> {
  const r = await tempRoot('osp-agent-unit-');
  roots.push(r);
  return r;
}
afterAll(async () => {
  for (const r of roots) await removeRoot(r);
});

describe('apply against os-apply-config upstream test trees', () => {
  it('renders keystone.conf, honours mode/allow_empty/comment-only control files', async () => {
    const root = await newRoot();
    const tpl = path.join(root, 'templates');
    await cp(path.join(FIXTURES, 'upstream-tests/templates'), tpl, { recursive: true });
    const applier = new Applier({ root: path.join(root, 'out'), templatesDir: tpl });
    const r = await applier.apply({ database: { url: 'sqlite:///blah' } });
    const out = (p: string): string => path.join(root, 'out', p);
    expect(await readFile(out('etc/keystone/keystone.conf'), 'utf8')).toBe('[foo]\ndatabase = sqlite:///blah\n');
    expect((await stat(out('etc/control/mode'))).mode & 0o7777).toBe(0o755);
    expect(await readFile(out('etc/control/empty'), 'utf8')).toBe('foo\n');
    expect(existsSync(out('etc/control/allow_empty'))).toBe(false);
    expect(r.written.sort()).toEqual(['/etc/control/empty', '/etc/control/mode', '/etc/keystone/keystone.conf']);
    const again = await applier.apply({ database: { url: 'sqlite:///blah' } });
    expect(again.written).toEqual([]);
  });

  it('resolves owner/group names and ids from the chown fixtures', async () => {
    const root = await newRoot();
    const tpl = path.join(root, 'templates');
    await cp(path.join(FIXTURES, 'upstream-tests/chown_templates'), tpl, { recursive: true });
    await new Applier({ root: path.join(root, 'out'), templatesDir: tpl }).apply({});
    for (const f of ['owner.uid', 'owner.name', 'group.gid', 'group.name']) {
      const st = await stat(path.join(root, 'out', f));
      expect([f, st.uid, st.gid]).toEqual([f, 0, 0]);
    }
  });

  it('renders real tripleo-image-elements templates (loops, hyphenated keys, JSON values)', async () => {
    const root = await newRoot();
    const tpl = path.join(root, 'templates');
    await cp(path.join(FIXTURES, 'tripleo-image-elements/ntp/os-apply-config'), tpl, { recursive: true });
    await cp(path.join(FIXTURES, 'tripleo-image-elements/os-net-config/os-apply-config'), tpl, { recursive: true });
    await new Applier({ root: path.join(root, 'out'), templatesDir: tpl }).apply({
      ntp: { servers: [{ server: 'ntp1.example' }, { server: 'ntp2.example' }] },
      os_net_config: { network_config: [{ type: 'interface', name: 'eth0' }] },
    });
    const ntp = await readFile(path.join(root, 'out/etc/ntp.conf'), 'utf8');
    expect(ntp).toMatch(/^server ntp1\.example$/m);
    expect(ntp).toMatch(/^server ntp2\.example$/m);
    const net = await readFile(path.join(root, 'out/etc/os-net-config/config.json'), 'utf8');
    expect(JSON.parse(net)).toEqual({ network_config: [{ type: 'interface', name: 'eth0' }] });
  });

  it('feeds executable templates the config on stdin', async () => {
    const root = await newRoot();
    const tpl = path.join(root, 'templates');
    await put(tpl, 'etc/glance/script.conf', '#!/bin/sh\nprintf \'%s\\n\' "$(sed -n \'s/.*"x": *"\\([^"]*\\)".*/\\1/p\')"\n', 0o755);
    await new Applier({ root: path.join(root, 'out'), templatesDir: tpl }).apply({ x: 'foo' });
    expect(await readFile(path.join(root, 'out/etc/glance/script.conf'), 'utf8')).toBe('foo\n');
  });
});

describe('control files, command line, merge', () => {
  it('rejects bad control values naming field, value and expectation', () => {
    expect(() => parseControl('mode: rwx\n', '/t/x.oac')).toThrow('control file /t/x.oac: mode = "rwx"; expected an octal file mode such as 0644');
    expect(() => parseControl('colour: red\n', '/t/x.oac')).toThrow('colour = "red"; expected one of the keys owner, group, mode, allow_empty');
    expect(parseControl("mode: '0600'\nallow_empty: false\n", '/t/x.oac')).toEqual({ mode: 0o600, allowEmpty: false });
  });

  it('parses osp.* keys with quotes and nesting, ignoring the rest', () => {
    expect(parseCmdline('ro osp.server=h:1 osp.note="a b" osp.x.y=2 ip=dhcp osp.flag')).toEqual({
      osp: { server: 'h:1', note: 'a b', x: { y: '2' }, flag: true },
    });
  });

  it('deep-merges objects, later wins, arrays replace', () => {
    expect(deepMerge({ a: { b: 1, c: [1] }, d: 1 }, { a: { c: [2], e: 3 } })).toEqual({ a: { b: 1, c: [2], e: 3 }, d: 1 });
  });
});

describe('refresh ordering and lock', () => {
  it('orders scripts like dib-run-parts and skips non-executable or badly named files', async () => {
    const root = await newRoot();
    for (const n of ['10-b', '9-a', '10-a', '100-z', 'x.sh', '05-old~']) await put(root, `p/${n}`, '#!/bin/sh\n', 0o755);
    await put(root, 'p/50-off', '#!/bin/sh\n', 0o644);
    expect(await runnableScripts(path.join(root, 'p'))).toEqual(['9-a', '10-a', '10-b', '100-z']);
  });

  it('a second run is refused while the lock is held; a dead holder is taken over', async () => {
    const root = await newRoot();
    const file = path.join(root, 'run.lock');
    const a = new RunLock(file);
    await a.acquire();
    await expect(new RunLock(file).acquire()).rejects.toThrow(/another osp-agent run \(pid \d+\) holds/);
    await a.release();
    await writeFile(file, '999999999\n');
    const c = new RunLock(file);
    await c.acquire();
    await c.release();
  });
});

describe('AgentRunner', () => {
  const result = (status: 'succeeded' | 'failed'): RunResult => ({
    revision: 1, status, changed: true, configHash: 'h', startedAt: '', finishedAt: '', phases: [], deployments: [],
  });

  it('retries a failed run with growing backoff until it succeeds, reporting each result', async () => {
    const outcomes: Array<'succeeded' | 'failed'> = ['failed', 'failed', 'succeeded'];
    const runsAtMs: number[] = [];
    const reported: string[] = [];
    const t0 = Date.now();
    const runner = new AgentRunner({
      engine: { run: async () => { runsAtMs.push(Date.now() - t0); return result(outcomes.shift() ?? 'succeeded'); } },
      onResult: (r) => { reported.push(r.status); },
      minBackoffMs: 50,
      maxBackoffMs: 1_000,
    });
    expect([runner.backoffMs(1), runner.backoffMs(2), runner.backoffMs(10)]).toEqual([50, 100, 1_000]);
    runner.start();
    await waitFor('three reported runs', () => reported.length >= 3, { timeoutMs: 10_000, intervalMs: 20 });
    await runner.stop();
    expect(reported).toEqual(['failed', 'failed', 'succeeded']);
    expect(runsAtMs[1] - runsAtMs[0]).toBeGreaterThanOrEqual(45);
    expect(runsAtMs[2] - runsAtMs[1]).toBeGreaterThanOrEqual(95);
  });

  it('coalesces notifications that arrive during a run into one more run', async () => {
    let runs = 0;
    let release: () => void = () => undefined;
    const runner = new AgentRunner({
      engine: { run: async () => { runs++; if (runs === 1) await new Promise<void>((r) => { release = r; }); return result('succeeded'); } },
    });
    runner.start();
    await waitFor('the first run to start', () => runs === 1, { timeoutMs: 5000, intervalMs: 5 });
    runner.notify();
    runner.notify();
    runner.notify();
    release();
    await waitFor('the coalesced second run', () => runs >= 2, { timeoutMs: 5000, intervalMs: 10 });
    await runner.stop();
    expect(runs).toBe(2);
  });
});
