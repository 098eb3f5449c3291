import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { OspdProcess } from '../harness/ospd.js';
import { AgentProcess } from '../harness/agent.js';
import { waitFor } from '../harness/wait.js';
import { ensureAgentBinary, put, removeRoot, tempRoot } from '../agent/helpers.js';

describe('config push: real ospd, real osp-agent binary, TLS', () => {
  let ospd: OspdProcess;
  let agent: AgentProcess;
  let root: string;
  let bin: string;
  const status = async () => JSON.parse((await ospd.ctl(['node', 'config', 'status', 'web-0', '-f', 'json'])).stdout);
  const setMetadata = async (m: object) => {
    const f = path.join(root, '..', `${path.basename(root)}-meta.json`);
    writeFileSync(f, JSON.stringify(m));
    const r = await ospd.ctl(['node', 'config', 'set', 'web-0', '--metadata', f, '-f', 'json']);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout).revision as number;
  };

  beforeAll(async () => {
    bin = await ensureAgentBinary();
    // Port 0: the harness keeps the bound ports across the restart test, so agent.yaml stays valid.
    ospd = new OspdProcess();
    await ospd.start();
    expect((await ospd.ctl(['node', 'create', '--name', 'web-0', '--driver', 'fake'])).code).toBe(0);
    root = await tempRoot('osp-push-');
    const cfg = await ospd.ctl(['node', 'agent-config', 'web-0']);
    expect(cfg.code).toBe(0);
    writeFileSync(`${root}.agent.yaml`, cfg.stdout, { mode: 0o600 });
    await put(root, 'usr/libexec/osp-agent/templates/etc/app/app.conf', 'greeting={{greeting}}\nport={{service.port}}\n');
    await put(root, 'usr/libexec/osp-agent/templates/etc/app/app.conf.oac', JSON.stringify({ mode: '0640' }));
    await put(root, 'usr/libexec/osp-agent/templates/etc/app/other.conf', 'colour={{colour}}\n');
    await put(root, 'usr/libexec/osp-agent/refresh/configure.d/10-record', `#!/bin/sh\necho "configured $(osp-agent --root ${root} config get greeting)" >> ${root}/hook.log\n`, 0o755);
    await put(root, 'usr/libexec/osp-agent/refresh/error.d/10-note', `#!/bin/sh\necho "error.d ran" >> ${root}/error.log\n`, 0o755);
    agent = new AgentProcess(bin, root, `${root}.agent.yaml`, `${root}.agent.log`);
    agent.start();
    await waitFor('agent stream', async () => (await status()).connected, { timeoutMs: 20_000, retryErrors: true });
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await ospd?.dispose();
    if (root) {
      // The root and its sibling files (agent.yaml, log, metadata documents).
      await removeRoot(root);
      for (const f of readdirSync(path.dirname(root))) if (f.startsWith(`${path.basename(root)}.`) || f.startsWith(`${path.basename(root)}-`)) rmSync(path.join(path.dirname(root), f), { force: true });
    }
  });

  it('renders the metadata with the right mode, runs configure.d, and acknowledges', async () => {
    const rev = await setMetadata({ greeting: 'hello', service: { port: 8080 }, colour: 'blue' });
    const s = await waitFor('ack', async () => ((await status()).applied_revision === rev ? status() : null), { timeoutMs: 20_000, retryErrors: true });
    expect(s.status).toBe('succeeded');
    expect(readFileSync(path.join(root, 'etc/app/app.conf'), 'utf8')).toBe('greeting=hello\nport=8080\n');
    expect(statSync(path.join(root, 'etc/app/app.conf')).mode & 0o777).toBe(0o640);
    expect(readFileSync(path.join(root, 'hook.log'), 'utf8')).toContain('configured hello');
    expect(s.phases.map((p: { name: string; status: string }) => `${p.name}:${p.status}`)).toContain('configure.d:succeeded');
  });

  it('changing one key rewrites only the file that uses it', async () => {
    const other = path.join(root, 'etc/app/other.conf');
    const before = statSync(other);
    const rev = await setMetadata({ greeting: 'bonjour', service: { port: 8080 }, colour: 'blue' });
    await waitFor('ack', async () => (await status()).applied_revision === rev, { timeoutMs: 20_000, retryErrors: true });
    expect(readFileSync(path.join(root, 'etc/app/app.conf'), 'utf8')).toContain('greeting=bonjour');
    const after = statSync(other);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('a failing hook runs error.d, is acknowledged as failed with its stderr, and is retried after the fix', async () => {
    const hook = await put(root, 'usr/libexec/osp-agent/refresh/post-configure.d/50-check', '#!/bin/sh\necho "disk full on /srv" >&2\nexit 3\n', 0o755);
    const rev = await setMetadata({ greeting: 'hola', service: { port: 8080 }, colour: 'blue' });
    const failed = await waitFor('failed ack', async () => {
      const s = await status();
      return s.acked_revision === rev && s.status === 'failed' ? s : null;
    }, { timeoutMs: 20_000, retryErrors: true });
    const phase = failed.phases.find((p: { name: string }) => p.name === 'post-configure.d');
    expect(phase.status).toBe('failed');
    expect(phase.exit_code).toBe(3);
    expect(phase.stderr_tail).toContain('disk full on /srv');
    expect(failed.applied_revision).toBe(rev - 1);
    expect(readFileSync(path.join(root, 'error.log'), 'utf8')).toContain('error.d ran');
    writeFileSync(hook, '#!/bin/sh\nexit 0\n');
    const ok = await waitFor('retry succeeds', async () => ((await status()).applied_revision === rev ? status() : null), { timeoutMs: 30_000, retryErrors: true });
    expect(ok.status).toBe('succeeded');
  }, 60_000);

  it('a script deployment round-trips its inputs and outputs to config status', async () => {
    const script = path.join(root, '..', `${path.basename(root)}-deploy.sh`);
    writeFileSync(script, '#!/bin/sh\necho "deploying $app_name x$replicas"\nprintf "%s-ready" "$app_name" > "$heat_outputs_path.endpoint"\n');
    const r = await ospd.ctl(['node', 'deployment', 'add', 'web-0', '--name', 'app', '--group', 'script', '--config', script,
      '--input', 'app_name=shop', '--input', 'replicas=3', '-f', 'json']);
    expect(r.stderr).toBe('');
    const rev = JSON.parse(r.stdout).revision;
    const s = await waitFor('deployment ack', async () => ((await status()).applied_revision === rev ? status() : null), { timeoutMs: 20_000, retryErrors: true });
    const d = s.deployments.find((x: { name: string }) => x.name === 'app');
    expect(d.status).toBe('succeeded');
    expect(d.outputs.endpoint).toBe('shop-ready');
    expect(d.outputs.deploy_status_code).toBe('0');
    expect(d.stdout_tail).toContain('deploying shop x3');
  });

  it('after an ospd restart the agent resumes and applies what was committed meanwhile', async () => {
    expect(await ospd.stop()).toBe(0);
    await ospd.start();
    const rev = await setMetadata({ greeting: 'after-restart', service: { port: 8080 }, colour: 'blue' });
    await waitFor('applied after restart', async () => (await status()).applied_revision === rev, { timeoutMs: 40_000, retryErrors: true });
    expect(readFileSync(path.join(root, 'etc/app/app.conf'), 'utf8')).toContain('greeting=after-restart');
    expect(agent.proc!.exitCode).toBeNull();
  }, 60_000);

  it('a revoked token ends the agent with a clear error and no retry storm', async () => {
    const before = (ospd.log().match(/agent token invalid or revoked|AGENT_TOKEN_INVALID/g) ?? []).length;
    const r = await ospd.ctl(['node', 'agent-token', 'revoke', 'web-0']);
    expect(r.code).toBe(0);
    expect(await Promise.race([agent.exit, new Promise((res) => setTimeout(() => res('still running'), 15_000))])).toBe(78);
    expect(agent.log()).toMatch(/refused the token for node web-0: it was revoked or replaced; get a new agent.yaml with 'ospctl node agent-config web-0'/);
    // A retry storm would show as more refusals in this window.
    await new Promise((res) => setTimeout(res, 2_000));
    const refusals = (ospd.log().match(/AGENT_TOKEN_INVALID/g) ?? []).length - before;
    expect(refusals).toBeLessThanOrEqual(2);
    // A wrong token from the start: the same clear refusal, at once.
    const bad = readFileSync(`${root}.agent.yaml`, 'utf8').replace(/token: .*/, 'token: ospa_not_the_token');
    writeFileSync(`${root}.bad.yaml`, bad);
    const wrong = new AgentProcess(bin, root, `${root}.bad.yaml`, `${root}.bad.log`);
    wrong.start();
    expect(await Promise.race([wrong.exit, new Promise((res) => setTimeout(() => res('still running'), 15_000))])).toBe(78);
    expect(wrong.log()).toMatch(/refused the token for node web-0/);
  }, 60_000);
});
