import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { OspdProcess, runProgram } from '../harness/ospd.js';
import { AgentProcess } from '../harness/agent.js';
import { waitFor } from '../harness/wait.js';
import { ensureAgentBinary } from '../agent/helpers.js';

/**
 * Telemetry end to end: the real ospd, the real dist/osp-agent binary and
 * mosquitto_sub (Debian mosquitto-clients) as the consumer. Nothing is faked.
 */


interface Message {
  topic: string;
  payload: string;
}

describe('telemetry end to end: ospd broker + osp-agent + mosquitto_sub', () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'osp-tele-e2e-'));
  let ospd: OspdProcess;
  let agent: AgentProcess;
  let tlsPort = 0;
  let plainPort = 0;
  let caFile = '';
  let reader = { name: 'grafana', password: '' };

  /**
   * mosquitto_sub reads default options from $XDG_CONFIG_HOME/mosquitto_sub,
   * which keeps the password off its command line.
   */
  function optionsDir(user: string, password: string): string {
    const dir = mkdtempSync(path.join(work, 'xdg-'));
    writeFileSync(path.join(dir, 'mosquitto_sub'), `-u ${user}\n-P ${password}\n`, { mode: 0o600 });
    return dir;
  }

  async function subscribe(opts: { tls: boolean; topic: string; count: number; user?: string; password?: string; timeoutS?: number }): Promise<{ code: number; messages: Message[]; stderr: string }> {
    const args = ['-h', '127.0.0.1', '-p', String(opts.tls ? tlsPort : plainPort), '-t', opts.topic, '-v', '-C', String(opts.count), '-W', String(opts.timeoutS ?? 15), '-i', `sub-${Math.random().toString(16).slice(2, 10)}`];
    if (opts.tls) args.push('--cafile', caFile);
    const xdg = optionsDir(opts.user ?? reader.name, opts.password ?? reader.password);
    const r = await runProgram('mosquitto_sub', args, { env: { XDG_CONFIG_HOME: xdg }, timeoutMs: ((opts.timeoutS ?? 15) + 10) * 1000 });
    const messages = r.stdout.split('\n').filter(Boolean).map((l) => {
      const i = l.indexOf(' ');
      return { topic: l.slice(0, i), payload: l.slice(i + 1) };
    });
    return { code: r.code, messages, stderr: r.stderr };
  }

  async function ctlJson(args: string[]): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = await ospd.ctl(args);
    if (r.code !== 0) throw new Error(`ospctl ${args.join(' ')}: ${r.code} ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  beforeAll(async () => {
    const bin = await ensureAgentBinary();
    // Port 0 everywhere; the harness keeps the bound ports across the restart test.
    ospd = new OspdProcess(path.join(work, 'ospd'));
    await ospd.start();
    ({ tls: tlsPort, plain: plainPort } = ospd.listeners!.mqtt);
    caFile = path.join(work, 'ca.pem');
    writeFileSync(caFile, ospd.admin().ca);
    expect((await ospd.ctl(['node', 'create', '--name', 'web-0', '--driver', 'fake'])).code).toBe(0);
    const cfg = await ospd.ctl(['node', 'agent-config', 'web-0']);
    expect(cfg.code, cfg.stderr).toBe(0);
    const doc = YAML.parse(cfg.stdout) as Record<string, unknown>;
    expect(doc.mqtt).toBe(`mqtts://127.0.0.1:${tlsPort}`);
    const root = path.join(work, 'root');
    mkdirSync(root);
    const agentYaml = path.join(work, 'agent.yaml');
    writeFileSync(agentYaml, YAML.stringify({ ...doc, metrics_interval_ms: 300 }), { mode: 0o600 });
    agent = new AgentProcess(bin, root, agentYaml, path.join(work, 'agent.log'));
    agent.start();
    const created = await ctlJson(['mqtt', 'user', 'create', reader.name, '--role', 'reader', '-f', 'json']);
    expect(created.name).toBe(reader.name);
    expect(created.role).toBe('reader');
    expect(created.password).toMatch(/^ospm_[A-Za-z0-9_-]{40,}$/);
    reader = { name: reader.name, password: created.password as string };
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await ospd?.stop();
    rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('a reader sees retained availability and facts and live metrics over TLS', async () => {
    await waitFor('agent online', async () => (await ctlJson(['node', 'inventory', 'web-0', '-f', 'json'])).availability === 'online', { timeoutMs: 20_000, retryErrors: true });
    const r = await subscribe({ tls: true, topic: 'osp/nodes/web-0/#', count: 4 });
    expect(r.code, r.stderr).toBe(0);
    const byTopic = (t: string) => r.messages.filter((m) => m.topic === `osp/nodes/web-0/${t}`);
    expect(byTopic('availability').map((m) => m.payload)).toEqual(['online']);
    expect(JSON.parse(byTopic('facts')[0].payload).schema).toBe('osp.inventory/v1');
    const metrics = byTopic('metrics').map((m) => JSON.parse(m.payload) as Record<string, number>);
    expect(metrics.length).toBeGreaterThanOrEqual(2);
    expect(metrics[0].uptime_seconds).toBeGreaterThan(0);
    expect(metrics[1].ts).toBeGreaterThan(metrics[0].ts);
  }, 60_000);

  it('the same over the loopback plain listener, and osp/server/status is online', async () => {
    const r = await subscribe({ tls: false, topic: 'osp/#', count: 5 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.messages).toContainEqual({ topic: 'osp/server/status', payload: 'online' });
    expect(r.messages).toContainEqual({ topic: 'osp/nodes/web-0/availability', payload: 'online' });
    expect(r.messages.some((m) => m.topic === 'osp/nodes/web-0/facts')).toBe(true);
    expect(r.messages.some((m) => m.topic === 'osp/nodes/web-0/metrics')).toBe(true);
  }, 60_000);

  it('a wrong password and an unknown user are refused; users are listed without secrets', async () => {
    const wrong = await subscribe({ tls: true, topic: 'osp/#', count: 1, password: 'not-the-password', timeoutS: 5 });
    expect(wrong.code).not.toBe(0);
    expect(wrong.messages).toEqual([]);
    expect(wrong.stderr).toMatch(/not authori[sz]ed|bad user name or password/i);
    const nobody = await subscribe({ tls: false, topic: 'osp/#', count: 1, user: 'nobody', timeoutS: 5 });
    expect(nobody.code).not.toBe(0);
    expect(nobody.messages).toEqual([]);
    const list = await ctlJson(['mqtt', 'user', 'list', '-f', 'json']);
    expect(list).toEqual([{ name: reader.name, role: 'reader', created_at: expect.any(String) }]);
    expect(JSON.stringify(list)).not.toContain(reader.password);
  }, 60_000);

  it('ospctl node inventory shows the facts the agent published', async () => {
    const inv = await ctlJson(['node', 'inventory', 'web-0', '-f', 'json']);
    expect(inv.node).toBe('web-0');
    expect(inv.facts.schema).toBe('osp.inventory/v1');
    // The agent collects from this very host.
    expect(inv.facts.memory.total).toBeGreaterThan(0);
    expect(inv.facts.cpu.count).toBe(os.cpus().length);
    const table = await ospd.ctl(['node', 'inventory', 'web-0']);
    expect(table.stdout).toMatch(/\| cpu\s+\|/);
  }, 30_000);

  it('ospctl metrics show returns stored samples; metrics watch streams live ones', async () => {
    const samples = await waitFor('stored samples', async () => {
      const s = await ctlJson(['metrics', 'show', 'web-0', '--since', '5m', '-f', 'json']);
      return s.length >= 3 ? s : null;
    }, { timeoutMs: 20_000, retryErrors: true });
    for (const s of samples) {
      expect(s.node).toBe('web-0');
      expect(s.resolution).toBe('raw');
      expect(s.values.memory_total_bytes).toBeGreaterThan(0);
    }
    const ts = samples.map((s: { ts_ms: number }) => s.ts_ms);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    const narrowed = await ctlJson(['metrics', 'show', 'web-0', '--since', '5m', '--name', 'load1', '-f', 'json']);
    expect(Object.keys(narrowed[0].values)).toEqual(['load1']);
    const bad = await ospd.ctl(['metrics', 'show', 'web-0', '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since yesterday');

    const t0 = Date.now();
    const w = await ospd.ctl(['metrics', 'watch', 'web-0', '--count', '2', '-f', 'json'], { timeoutMs: 20_000 });
    expect(w.code, w.stderr).toBe(0);
    const lines = w.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0].node).toBe('web-0');
    // Live: produced after the watch began (agents stamp their own clock; same host here).
    expect(lines[0].ts_ms).toBeGreaterThanOrEqual(t0 - 1000);
  }, 60_000);

  it('agent offline then online shows as node events', async () => {
    await agent.stop();
    await waitFor('offline', async () => (await ctlJson(['node', 'inventory', 'web-0', '-f', 'json'])).availability === 'offline', { timeoutMs: 20_000, retryErrors: true });
    agent.start();
    await waitFor('online again', async () => (await ctlJson(['node', 'inventory', 'web-0', '-f', 'json'])).availability === 'online', { timeoutMs: 20_000, retryErrors: true });
    const events = await ctlJson(['node', 'history', 'web-0', '-f', 'json']) as { type: string; message: string }[];
    const avail = events.filter((e) => e.type === 'availability').map((e) => e.message);
    // Newest first: online (restart), offline (stop), online (first start).
    expect(avail.slice(0, 3)).toEqual(['agent online', 'agent offline', 'agent online']);
  }, 60_000);

  it('after an ospd restart the retained availability and facts are back, and the reader still logs in', async () => {
    // Stop the agent first so nothing republishes: what the reader sees must come from ospd's own retained store.
    await agent.stop();
    await waitFor('offline', async () => (await ctlJson(['node', 'inventory', 'web-0', '-f', 'json'])).availability === 'offline', { timeoutMs: 20_000, retryErrors: true });
    const before = await ctlJson(['node', 'inventory', 'web-0', '-f', 'json']);
    expect(await ospd.stop()).toBe(0);
    await ospd.start();
    const r = await subscribe({ tls: true, topic: 'osp/nodes/web-0/#', count: 2, timeoutS: 10 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.messages).toContainEqual({ topic: 'osp/nodes/web-0/availability', payload: 'offline' });
    const facts = r.messages.find((m) => m.topic === 'osp/nodes/web-0/facts');
    expect(JSON.parse(facts!.payload)).toEqual(before.facts);
    const status = await subscribe({ tls: false, topic: 'osp/server/status', count: 1, timeoutS: 5 });
    expect(status.messages).toEqual([{ topic: 'osp/server/status', payload: 'online' }]);
  }, 90_000);

  it('stopping ospd under a connected agent records it offline; the agent comes back online by itself', async () => {
    const availability = async () => ((await ctlJson(['node', 'history', 'web-0', '--limit', '1000', '-f', 'json'])) as { type: string; message: string }[])
      .filter((e) => e.type === 'availability').map((e) => e.message);
    const before = (await availability()).length;
    agent.start();
    await waitFor('online', async () => (await ctlJson(['node', 'inventory', 'web-0', '-f', 'json'])).availability === 'online', { timeoutMs: 20_000, retryErrors: true });
    const logStart = ospd.log().length;
    expect(await ospd.stop()).toBe(0);
    // Written during shutdown: ingest drains into the store before it closes.
    expect(ospd.log().slice(logStart)).not.toContain('telemetry store failed');
    await ospd.start();
    await waitFor('online after reconnect', async () => (await ctlJson(['node', 'inventory', 'web-0', '-f', 'json'])).availability === 'online', { timeoutMs: 30_000, retryErrors: true });
    const after = await availability();
    expect(after.length - before).toBe(3);
    expect(after.slice(0, 3)).toEqual(['agent online', 'agent offline', 'agent online']);
  }, 90_000);

  it('a deleted reader is refused', async () => {
    expect((await ospd.ctl(['mqtt', 'user', 'delete', reader.name])).code).toBe(0);
    const r = await subscribe({ tls: false, topic: 'osp/#', count: 1, timeoutS: 5 });
    expect(r.code).not.toBe(0);
    expect(r.messages).toEqual([]);
    const again = await ospd.ctl(['mqtt', 'user', 'delete', reader.name]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('not found');
  }, 30_000);
});
