import { readFile, stat, chmod, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAgentBinary, put, removeRoot, runAgent, setServerConfig, tempRoot } from './helpers.js';
import { FIXTURES } from '../harness/fixtures.js';
import { waitFor } from '../harness/wait.js';

// Everything here drives the real single-executable binary (dist/osp-agent) over a --root tree.
interface Phase { name: string; status: string; exitCode: number; stdoutTail: string; stderrTail: string }
interface Deployment { id: string; name: string; status: string; exitCode: number; outputs: Record<string, string>; stderrTail: string }
interface Result { revision: number; status: string; changed: boolean; phases: Phase[]; deployments: Deployment[]; files?: { written: string[] } }

const roots: string[] = [];
async function newRoot(): Promise<string> {
  const r = await tempRoot();
  roots.push(r);
  return r;
}
afterAll(async () => {
  for (const r of roots) await removeRoot(r);
});

async function applyOnce(root: string, ...extra: string[]): Promise<{ code: number; result: Result; stderr: string }> {
  const run = await runAgent(['--root', root, 'apply', '--once', ...extra]);
  let result: Result;
  try {
    result = JSON.parse(run.stdout) as Result;
  } catch {
    throw new Error(`osp-agent printed no JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
  return { code: run.code, result, stderr: run.stderr };
}

const phase = (r: Result, name: string): Phase | undefined => r.phases.find((p) => p.name === name);
const TPL = 'usr/libexec/osp-agent/templates';
const ORC = 'usr/libexec/osp-agent/refresh';

beforeAll(async () => {
  await ensureAgentBinary();
}, 120_000);

describe('osp-agent apply --once', () => {
  let root: string;
  beforeAll(async () => {
    root = await newRoot();
    await put(root, `${TPL}/etc/app/app.conf`, '[app]\nport = {{app.port}}\nmissing = {{no.such.key}}\n');
    await put(root, `${TPL}/etc/app/app.conf.oac`, 'mode: 0640\n');
    await put(root, `${TPL}/etc/motd`, '{{motd}}\n');
    // The hook reads config the way os-refresh-config hooks do: through the agent's own `config get`.
    await put(root, `${ORC}/configure.d/10-record`, '#!/bin/sh\nset -e\necho "port=$(osp-agent config get app.port --type int) rev=$OSP_CONFIG_REVISION" >> "$OSP_ROOT/hook.log"\n', 0o755);
    await put(root, `${ORC}/configure.d/README.txt`, 'not executable, bad name: never runs\n');
    await put(root, `${ORC}/error.d/10-note`, '#!/bin/sh\necho "error.d saw failure" >> "$OSP_ROOT/error.log"\n', 0o755);
    await setServerConfig(root, { revision: 1, metadata: { app: { port: 8080 }, motd: 'hello' } });
  });

  it('renders files with the control-file mode and runs configure.d', async () => {
    const { code, result } = await applyOnce(root);
    expect(code).toBe(0);
    expect(result.status).toBe('succeeded');
    expect(result.revision).toBe(1);
    expect(await readFile(path.join(root, 'etc/app/app.conf'), 'utf8')).toBe('[app]\nport = 8080\nmissing = \n');
    expect((await stat(path.join(root, 'etc/app/app.conf'))).mode & 0o7777).toBe(0o640);
    expect(await readFile(path.join(root, 'hook.log'), 'utf8')).toBe('port=8080 rev=1\n');
    expect(result.phases.map((p) => `${p.name}:${p.status}`)).toEqual([
      'apply:succeeded', 'pre-configure.d:succeeded', 'configure.d:succeeded', 'migration.d:succeeded', 'post-configure.d:succeeded',
    ]);
    const status = await runAgent(['--root', root, 'status']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).committed.revision).toBe(1);
  });

  it('runs nothing when the merged config did not change', async () => {
    const { code, result } = await applyOnce(root);
    expect(code).toBe(0);
    expect(result.changed).toBe(false);
    expect(result.phases).toEqual([]);
    expect(await readFile(path.join(root, 'hook.log'), 'utf8')).toBe('port=8080 rev=1\n');
  });

  it('rewrites only the file whose key changed', async () => {
    const before = await stat(path.join(root, 'etc/app/app.conf'));
    await setServerConfig(root, { revision: 2, metadata: { app: { port: 8080 }, motd: 'changed' } });
    const { code, result } = await applyOnce(root);
    expect(code).toBe(0);
    expect(result.files?.written).toEqual(['/etc/motd']);
    expect(await readFile(path.join(root, 'etc/motd'), 'utf8')).toBe('changed\n');
    const after = await stat(path.join(root, 'etc/app/app.conf'));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('a failing hook runs error.d, reports the stderr tail, commits nothing, and is retried after the fix', async () => {
    const failing = await put(root, `${ORC}/configure.d/20-fail`, '#!/bin/sh\necho "disk quota exceeded" >&2\nexit 3\n', 0o755);
    await setServerConfig(root, { revision: 3, metadata: { app: { port: 9090 }, motd: 'changed' } });
    const first = await applyOnce(root);
    expect(first.code).toBe(1);
    expect(first.result.status).toBe('failed');
    const conf = phase(first.result, 'configure.d')!;
    expect(conf).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(conf.stderrTail).toContain('disk quota exceeded');
    expect(phase(first.result, 'migration.d')?.status).toBe('skipped');
    expect(phase(first.result, 'error.d')?.status).toBe('succeeded');
    expect(await readFile(path.join(root, 'error.log'), 'utf8')).toBe('error.d saw failure\n');
    const status = JSON.parse((await runAgent(['--root', root, 'status'])).stdout);
    expect(status.committed.revision).toBe(2);
    expect(status.lastRun.status).toBe('failed');
    // Not committed: the same config runs again (no "unchanged" short cut).
    await chmod(failing, 0o644);
    const second = await applyOnce(root);
    expect(second.code).toBe(0);
    expect(second.result).toMatchObject({ status: 'succeeded', changed: true, revision: 3 });
    expect((await readFile(path.join(root, 'hook.log'), 'utf8')).trim().split('\n').at(-1)).toBe('port=9090 rev=3');
  });
});

describe('software deployments', () => {
  it('a script deployment gets its inputs and round-trips its outputs; runs once per id', async () => {
    const root = await newRoot();
    // Heat's own sample config (api-ref), writing to /tmp/$bar: bar is made unique and removed after.
    const fixture = JSON.parse(await readFile(`${FIXTURES}/os-config/os-collect-config/heat-api-config-show-response.json`, 'utf8'));
    const bar = `osp-agent-deploy-${path.basename(root)}`;
    const deployment = {
      id: 'dep-1', name: 'write-file', group: 'script', config: fixture.software_config.config, options: null,
      inputs: [{ name: 'foo', value: 'fooooo' }, { name: 'bar', value: bar }, { name: 'deploy_server_id', value: 'srv-9' }, { name: 'deploy_action', value: 'CREATE' }],
    };
    const unknown = { id: 'dep-2', name: 'puppet-thing', group: 'puppet', config: '', inputs: [], options: null };
    await setServerConfig(root, { revision: 4, metadata: {}, deployments: [deployment, unknown] });
    try {
      const { code, result } = await applyOnce(root);
      expect(code).toBe(1);
      const [d1, d2] = result.deployments;
      expect(d1.status).toBe('succeeded');
      expect(d1.outputs.result).toBe(`The file /tmp/${bar} contains fooooo for server srv-9 during CREATE`);
      expect(d1.outputs.deploy_stdout).toContain(`Written to /tmp/${bar}`);
      expect(d1.outputs.deploy_stderr).toContain('Output to stderr');
      expect(d1.outputs.deploy_status_code).toBe('0');
      expect(d2).toMatchObject({ status: 'failed', exitCode: 1 });
      expect(d2.stderrTail).toContain('group "puppet" is not supported; expected one of script, apply-config');
      // Fix the unknown one: the succeeded script must not run a second time.
      await rm(`/tmp/${bar}`);
      await setServerConfig(root, { revision: 5, metadata: {}, deployments: [deployment] });
      const again = await applyOnce(root);
      expect(again.result.status).toBe('succeeded');
      expect(again.result.deployments).toEqual([]);
      expect(existsSync(`/tmp/${bar}`)).toBe(false);
      // A changed config runs it again.
      const changed = { ...deployment, inputs: [...deployment.inputs.slice(0, 1), { name: 'bar', value: bar }, { name: 'deploy_server_id', value: 'srv-10' }] };
      await setServerConfig(root, { revision: 6, metadata: {}, deployments: [changed] });
      const third = await applyOnce(root);
      expect(third.result.deployments.map((d) => d.outputs.result)).toEqual([`The file /tmp/${bar} contains fooooo for server srv-10 during `]);
    } finally {
      await rm(`/tmp/${bar}`, { force: true });
    }
  });

  it('an apply-config deployment is merged into the template data', async () => {
    const root = await newRoot();
    await put(root, `${TPL}/etc/ntp.conf`, '{{#ntp.servers}}server {{server}}\n{{/ntp.servers}}');
    await setServerConfig(root, {
      revision: 1, metadata: { ntp: { servers: [{ server: 'old.example' }] } },
      deployments: [{ id: 'd', name: 'ntp', group: 'apply-config', config: { ntp: { servers: [{ server: 'a.example' }, { server: 'b.example' }] } }, inputs: [], options: null }],
    });
    const { code, result } = await applyOnce(root);
    expect(code).toBe(0);
    expect(result.deployments.map((d) => d.status)).toEqual(['succeeded']);
    expect(await readFile(path.join(root, 'etc/ntp.conf'), 'utf8')).toBe('server a.example\nserver b.example\n');
  });
});

describe('sources and bad input', () => {
  it('refuses a world-writable local-data directory with a clear message', async () => {
    const root = await newRoot();
    const dir = path.join(root, 'var/lib/osp-agent/local-data');
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o777);
    const { code, result } = await applyOnce(root);
    expect(code).toBe(1);
    expect(phase(result, 'collect')?.stderrTail).toContain(`local-data directory ${dir} is world-writable (mode 0777)`);
    const get = await runAgent(['--root', root, 'config', 'get', 'x']);
    expect(get.code).toBe(1);
    expect(get.stderr).toContain('AGENT_LOCAL_DATA_INSECURE');
  });

  it('merges kernel command line < server < local-data, and config get honours types and defaults', async () => {
    const root = await newRoot();
    await put(root, 'proc/cmdline', 'BOOT_IMAGE=/vmlinuz quiet osp.server=10.213.0.1:6385 osp.net.mtu=9000 osp.debug\n');
    await setServerConfig(root, { revision: 7, metadata: { osp: { net: { mtu: '1500' } }, svc: { enabled: 'yes', list: [1, 2] }, name: 'srv' } });
    await put(root, 'var/lib/osp-agent/local-data/10-site.json', JSON.stringify({ name: 'local' }));
    await chmod(path.join(root, 'var/lib/osp-agent/local-data'), 0o700);
    expect((await applyOnce(root)).code).toBe(0);
    const get = async (...a: string[]): Promise<string> => {
      const r = await runAgent(['--root', root, 'config', 'get', ...a]);
      if (r.code !== 0) return `ERR ${r.stderr.trim()}`;
      return r.stdout.trim();
    };
    expect(await get('osp.server')).toBe('10.213.0.1:6385');
    expect(await get('osp.net.mtu', '--type', 'int')).toBe('1500');
    expect(await get('osp.debug', '--type', 'bool')).toBe('true');
    expect(await get('svc.enabled', '--type', 'bool')).toBe('true');
    expect(await get('svc.list', '--type', 'json')).toBe('[1,2]');
    expect(await get('name')).toBe('local');
    expect(await get('absent', '--default', '42', '--type', 'int')).toBe('42');
    expect(await get('name', '--type', 'int')).toBe('ERR osp-agent: config key "name" is "local"; expected an integer [AGENT_CONFIG_TYPE_INVALID]');
    expect(await get('svc.list')).toContain('expected a string, number or boolean (use --type json');
  });

  it('reports a template that fails to parse with its file and line, and writes nothing', async () => {
    const root = await newRoot();
    await put(root, `${TPL}/etc/a.conf`, 'fine = {{x}}\n');
    const bad = await put(root, `${TPL}/etc/b.conf`, '[b]\nkey = 1\n{{#section}}\nvalue\n');
    await setServerConfig(root, { revision: 1, metadata: { x: 1 } });
    const { code, result } = await applyOnce(root);
    expect(code).toBe(1);
    expect(phase(result, 'apply')?.stderrTail).toContain(`template ${bad}:3: Unclosed section "section"`);
    expect(existsSync(path.join(root, 'etc/a.conf'))).toBe(false);
  });

  it('kills a hook that exceeds its timeout together with its process group', async () => {
    const root = await newRoot();
    await put(root, `${ORC}/configure.d/10-hang`, '#!/bin/sh\nsleep 60 &\necho $! > "$OSP_ROOT/child.pid"\nsleep 60\n', 0o755);
    await setServerConfig(root, { revision: 1, metadata: {} });
    const t0 = Date.now();
    const { code, result } = await applyOnce(root, '--script-timeout-ms', '500');
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(phase(result, 'configure.d')?.stderrTail).toContain('configure.d/10-hang timed out after 500 ms');
    const childPid = Number(await readFile(path.join(root, 'child.pid'), 'utf8'));
    const gone = () => {
      try {
        process.kill(childPid, 0);
        return false;
      } catch {
        return true;
      }
    };
    await waitFor(`hung script's child ${childPid} to be killed`, gone, { timeoutMs: 5000 });
  });

  it('rejects a bad option value naming the option, the value and what was expected', async () => {
    const r = await runAgent(['apply', '--once', '--script-timeout-ms', 'soon']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--script-timeout-ms = "soon"; expected a positive integer');
  });
});
