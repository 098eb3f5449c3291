import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';
import { run } from '../../cli/main.js';
import { OspError } from '../../common/errors.js';
import { silentLogger } from '../../common/logging.js';
import { StackServiceClient, type StackEvent as WireEvent, type WatchStackEventsResponse } from '../../proto/gen/osp/v1/stack.js';
import { bearer } from '../../server/api/call.js';
import { GrpcApi } from '../../server/api/server.js';
import { stackService, type SignalStack } from '../../server/api/stack-service.js';
import type {
  DeploymentFailure, HeatStatus, ResourceView, StackDetail, StackEvent, StackOperations, StackPlan, StackRequest, StackSummary,
} from '../../server/orchestration/engine/contract.js';
import { waitFor } from '../harness/wait.js';
import { makePki, tempDir } from '../telemetry/helpers.js';

/**
 * A stand-in for the orchestration engine (which is tested on its own): it
 * records what arrives and answers from memory, so these tests are about the
 * API and ospctl: the bundle on the wire, mapping, paging, --wait, --follow.
 * A stack's status moves on each time it is read, so --wait sees progress.
 */
class FakeEngine implements StackOperations {
  requests: StackRequest[] = [];
  stacks = new Map<string, StackDetail & { steps: HeatStatus[] }>();
  resourceViews: ResourceView[] = [];
  eventLog: StackEvent[] = [];
  failureList: DeploymentFailure[] = [];
  private listeners = new Set<(e: StackEvent) => void>();

  private summary(name: string, status: HeatStatus, total = 2): StackDetail & { steps: HeatStatus[] } {
    return {
      id: `id-${name}`, name, status, statusReason: '', resourcesTotal: total, resourcesComplete: 0, timeoutMins: 60,
      createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', description: 'test stack',
      parameters: { flavor: 'small', admin_password: '******' }, outputs: [], steps: [],
    };
  }

  private found(name: string) {
    const s = this.stacks.get(name);
    if (!s) throw new OspError('STACK_NOT_FOUND', `stack ${name}: no such stack`, { field: 'stack', value: name });
    return s;
  }

  emit(e: Omit<StackEvent, 'id'>): StackEvent {
    const ev = { ...e, id: this.eventLog.length + 1 };
    this.eventLog.push(ev);
    for (const l of this.listeners) l(ev);
    return ev;
  }

  async validate(req: StackRequest) {
    this.requests.push(req);
    if (!(req.template in req.files)) {
      throw new OspError('TEMPLATE_INVALID', `${req.template}:1:1: not in the bundle`, { problems: [{ field: req.template, description: `${req.template}:1:1: not in the bundle` }] });
    }
    return { parameters: { flavor: 'small' }, resources: [{ name: 'cfg', type: 'OS::Heat::SoftwareConfig' }], notes: ['event_sinks ignored'] };
  }

  async create(req: StackRequest): Promise<StackSummary | StackPlan> {
    this.requests.push(req);
    if (req.dryRun) return { create: ['cfg', 'deploy'], update: [], replace: [], delete: [], unchanged: [] };
    if (this.stacks.has(req.name)) throw new OspError('STACK_EXISTS', `stack ${req.name}: a stack with this name already exists`, { field: 'stack', value: req.name });
    const s = this.summary(req.name, 'CREATE_IN_PROGRESS');
    s.steps = req.parameters.fail === 'yes' ? ['CREATE_IN_PROGRESS', 'CREATE_FAILED'] : ['CREATE_IN_PROGRESS', 'CREATE_IN_PROGRESS', 'CREATE_COMPLETE'];
    this.stacks.set(req.name, s);
    this.emit({ stack: req.name, stackPath: req.name, resource: req.name, physicalId: s.id, status: 'CREATE_IN_PROGRESS', statusReason: 'Stack CREATE started', at: new Date().toISOString() });
    return s;
  }

  async update(req: StackRequest): Promise<StackSummary | StackPlan> {
    this.requests.push(req);
    const s = this.found(req.name);
    if (s.status.endsWith('_IN_PROGRESS')) throw new OspError('STACK_IN_PROGRESS', `stack ${req.name}: ${s.status} is running`, { field: 'stack', value: req.name });
    return req.dryRun ? { create: [], update: ['deploy'], replace: [], delete: [], unchanged: ['cfg'] } : s;
  }

  async delete(name: string): Promise<StackSummary> {
    const s = this.found(name);
    s.status = 'DELETE_IN_PROGRESS';
    s.steps = ['DELETE_IN_PROGRESS'];
    return s;
  }

  /** A stack named bad-* fails its check. */
  async check(name: string): Promise<StackSummary> {
    const s = this.found(name);
    if (s.status.endsWith('_IN_PROGRESS')) throw new OspError('STACK_IN_PROGRESS', `stack ${name}: ${s.status} is running`, { field: 'stack', value: name });
    s.status = 'CHECK_IN_PROGRESS';
    s.steps = name.startsWith('bad') ? ['CHECK_IN_PROGRESS', 'CHECK_FAILED'] : ['CHECK_IN_PROGRESS', 'CHECK_COMPLETE'];
    return { ...s };
  }

  async list(page: { limit?: number; marker?: string }) {
    const all = [...this.stacks.values()];
    return { stacks: all.slice(0, page.limit), nextMarker: '' };
  }

  async get(name: string): Promise<StackDetail> {
    const s = this.found(name);
    const next = s.steps.shift();
    if (next) {
      s.status = next;
      s.resourcesComplete = next.endsWith('_COMPLETE') ? s.resourcesTotal : Math.min(s.resourcesComplete + 1, s.resourcesTotal - 1);
      s.statusReason = next === 'CREATE_FAILED' ? 'resource deploy: script exited 3' : next === 'CHECK_FAILED' ? 'Resource CHECK failed: deploy: gone from node-1' : '';
    } else if (s.status === 'DELETE_IN_PROGRESS') {
      this.stacks.delete(name);
    }
    return { ...s };
  }

  async resources(name: string, nestedDepth: number) {
    this.found(name);
    return this.resourceViews.filter((r) => r.stackPath.split('/').length - 1 <= nestedDepth);
  }

  async resource(name: string, resource: string) {
    const r = this.resourceViews.find((x) => x.stackPath === name && x.name === resource);
    if (!r) throw new OspError('NOT_FOUND', `stack ${name}: no resource ${resource}`, { field: 'resource', value: resource });
    return { ...r, properties: { count: 3, password: '******' }, attributes: { refs: ['a', 'b'] } };
  }

  async events(name: string, page: { after?: number; limit?: number }) {
    this.found(name);
    const after = page.after ?? 0;
    return this.eventLog.filter((e) => e.stack === name && e.id > after).slice(0, page.limit ?? 100);
  }

  onEvent(fn: (e: StackEvent) => void) {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  get listenerCount() {
    return this.listeners.size;
  }

  async failures(name: string) {
    this.found(name);
    return this.failureList;
  }
}

const TOKEN = `tok-${Math.random().toString(36).slice(2)}`;
const dir = tempDir('stack-api');
const log = silentLogger();
let engine: FakeEngine;
const signals: Parameters<SignalStack>[] = [];
let api: GrpcApi;
let configFile = '';
let caPem = '';

beforeAll(async () => {
  const pki = makePki(dir.path);
  caPem = pki.caPem;
  const auth = (md: Metadata) => {
    if (bearer(md) !== TOKEN) throw new Error('bad token');
    return { kind: 'admin' as const, name: 'admin' };
  };
  const signal: SignalStack = async (...a) => {
    if (a[1] === 'missing') throw new OspError('NOT_FOUND', `stack ${a[0]}: no resource missing`, { field: 'resource', value: 'missing' });
    signals.push(a);
  };
  api = new GrpcApi({
    listen: { host: '127.0.0.1', port: 0 }, tls: { certPem: pki.certPem, keyPem: pki.keyPem }, log,
    // Each test gets a fresh engine behind the one service the listener was started with.
    services: [stackService(new Proxy({} as StackOperations, {
      get: (_t, k: keyof StackOperations) => (engine[k] as (...a: unknown[]) => unknown).bind(engine),
    }), signal, auth, log)],
  });
  await api.start();
  configFile = path.join(dir.path, 'ospctl.yaml');
  writeFileSync(configFile, YAML.stringify({ server: `127.0.0.1:${api.boundPort}`, ca: pki.caPem, token: TOKEN }));
});

afterAll(async () => {
  await api?.stop(1000);
  dir.remove();
});

beforeEach(() => {
  engine = new FakeEngine();
});
afterEach(() => vi.restoreAllMocks());

/** Runs ospctl in-process, as bin/ospctl does, and captures what it prints. */
async function ospctl(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { err += String(c); return true; });
  try {
    const code = await run(['--config', configFile, ...args]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

function files(tree: Record<string, string | Buffer>): string {
  const root = path.join(dir.path, `t${Math.random().toString(36).slice(2)}`);
  for (const [p, c] of Object.entries(tree)) {
    mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    writeFileSync(path.join(root, p), c);
  }
  return root;
}

const TEMPLATE = 'heat_template_version: wallaby\nresources:\n  cfg:\n    type: OS::Heat::SoftwareConfig\n    properties: {config: {get_file: ../scripts/run.sh}}\n';

function client() {
  return new StackServiceClient(`127.0.0.1:${api.boundPort}`, credentials.createSsl(Buffer.from(caPem)));
}

function md() {
  const m = new Metadata();
  m.set('authorization', `Bearer ${TOKEN}`);
  return m;
}

describe('StackService through ospctl', () => {
  it('create sends the bundle, parameters and timeout; --wait shows progress and ends on CREATE_COMPLETE', async () => {
    const root = files({ 'tht/top.yaml': TEMPLATE, 'scripts/run.sh': '#!/bin/sh\necho hi\n', 'env/e.yaml': 'parameters: {flavor: small}\n' });
    const r = await ospctl('stack', 'create', 'web', '-t', path.join(root, 'tht/top.yaml'), '-e', path.join(root, 'env/e.yaml'),
      '--parameter', 'flavor=large', '--parameter', 'note=a=b', '--timeout', '5', '--wait', '-f', 'json');
    expect(r.err).not.toMatch(/ospctl:/);
    expect(r.code).toBe(0);
    const req = engine.requests[0];
    expect(req).toMatchObject({ name: 'web', template: 'tht/top.yaml', environments: ['env/e.yaml'], parameters: { flavor: 'large', note: 'a=b' }, timeoutMins: 5, dryRun: false, actor: 'admin' });
    expect(Object.keys(req.files).sort()).toEqual(['env/e.yaml', 'scripts/run.sh', 'tht/top.yaml']);
    expect(Buffer.from(req.files['scripts/run.sh']).toString()).toBe('#!/bin/sh\necho hi\n');
    // Not a terminal: a line per change (Node's TLS-by-IP warning aside).
    expect(r.err.split('\n').filter((l) => l.startsWith('stack '))).toEqual([
      'stack web: CREATE_IN_PROGRESS: 1/2 resources complete',
      'stack web: CREATE_COMPLETE: 2/2 resources complete',
    ]);
    expect(JSON.parse(r.out)).toMatchObject({ name: 'web', status: 'CREATE_COMPLETE', resources: '2/2' });
  });

  it('--wait exits 1 on CREATE_FAILED with the reason; a taken name is STACK_EXISTS', async () => {
    const root = files({ 'top.yaml': 'heat_template_version: wallaby\n' });
    const r = await ospctl('stack', 'create', 'bad', '-t', path.join(root, 'top.yaml'), '--parameter', 'fail=yes', '--wait');
    expect(r.code).toBe(1);
    expect(r.err).toContain('ospctl: stack bad: CREATE_FAILED: resource deploy: script exited 3');
    const again = await ospctl('stack', 'create', 'bad', '-t', path.join(root, 'top.yaml'));
    expect(again.code).toBe(1);
    expect(again.err).toContain('stack bad: a stack with this name already exists');
  });

  it('check --wait ends on CHECK_COMPLETE, exits 1 on CHECK_FAILED with the reason; a check of a running stack is STACK_IN_PROGRESS', async () => {
    const root = files({ 'top.yaml': 'heat_template_version: wallaby\n' });
    for (const name of ['good', 'bad-node']) {
      await ospctl('stack', 'create', name, '-t', path.join(root, 'top.yaml'));
      const busy = await ospctl('stack', 'check', name);
      expect(busy.code).toBe(1);
      expect(busy.err).toContain(`stack ${name}: CREATE_IN_PROGRESS is running`);
      while ((await engine.get(name)).status.endsWith('_IN_PROGRESS')) { /* each read moves the stand-in's status on */ }
    }
    const ok = await ospctl('stack', 'check', 'good', '--wait', '-f', 'json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ name: 'good', status: 'CHECK_COMPLETE' });
    const failed = await ospctl('stack', 'check', 'bad-node', '--wait');
    expect(failed.code).toBe(1);
    expect(failed.err).toContain('ospctl: stack bad-node: CHECK_FAILED: Resource CHECK failed: deploy: gone from node-1');
    const started = await ospctl('stack', 'check', 'good', '-f', 'json');
    expect(JSON.parse(started.out)).toMatchObject({ status: 'CHECK_IN_PROGRESS' });
    expect((await ospctl('stack', 'check', 'nope')).err).toContain('stack nope: no such stack');
  });

  it('a referenced file that does not exist is a usage error before anything is sent', async () => {
    const root = files({ 'top.yaml': 'heat_template_version: wallaby\nresources:\n  n:\n    type: child.yaml\n' });
    const r = await ospctl('stack', 'create', 'x', '-t', path.join(root, 'top.yaml'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/top\.yaml: type child\.yaml: cannot read .*child\.yaml: no such file/);
    expect(engine.requests).toHaveLength(0);
  });

  it('--dry-run prints the plan; update of a running stack is STACK_IN_PROGRESS', async () => {
    const root = files({ 'top.yaml': 'heat_template_version: wallaby\n' });
    const plan = await ospctl('stack', 'create', 'p', '-t', path.join(root, 'top.yaml'), '--dry-run', '-f', 'json');
    expect(plan.code).toBe(0);
    expect(JSON.parse(plan.out)).toEqual({ create: ['cfg', 'deploy'], update: [], replace: [], delete: [], unchanged: [] });
    expect(engine.requests[0].dryRun).toBe(true);
    await ospctl('stack', 'create', 'p', '-t', path.join(root, 'top.yaml'));
    const busy = await ospctl('stack', 'update', 'p', '-t', path.join(root, 'top.yaml'));
    expect(busy.code).toBe(1);
    expect(busy.err).toContain('stack p: CREATE_IN_PROGRESS is running');
  });

  it('validate shows resources and parameters; a refusal shows its problem lines', async () => {
    const root = files({ 'top.yaml': 'heat_template_version: wallaby\n' });
    const ok = await ospctl('stack', 'validate', 'v', '-t', path.join(root, 'top.yaml'), '-f', 'json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({ resources: [{ name: 'cfg', type: 'OS::Heat::SoftwareConfig' }], parameters: { flavor: 'small' }, notes: ['event_sinks ignored'] });
    expect(ok.err).toContain('note: event_sinks ignored');
    const bad = await new Promise<ServiceError>((resolve) => client().validateStack({ stack: 'v', files: {}, template: 'top.yaml', environments: [], parameters: {} }, md(), (e) => resolve(e!)));
    expect(bad.details).toBe('top.yaml:1:1: not in the bundle');
    expect(bad.metadata.get('osp-error-code')).toEqual(['TEMPLATE_INVALID']);
  });

  it('show, output show (one and --all), failures', async () => {
    const root = files({ 'top.yaml': 'heat_template_version: wallaby\n' });
    await ospctl('stack', 'create', 's', '-t', path.join(root, 'top.yaml'));
    engine.stacks.get('s')!.outputs = [
      { name: 'stdout', description: 'deploy_stdout of each node', value: { 'node-1': 'ok\n' } },
      { name: 'broken', description: '', error: 'resource deploy failed' },
    ];
    const show = await ospctl('stack', 'show', 's', '-f', 'json');
    expect(JSON.parse(show.out)).toMatchObject({ name: 's', timeout_mins: 60, parameters: { flavor: 'small', admin_password: '******' }, outputs: ['stdout', 'broken'] });
    const one = await ospctl('stack', 'output', 'show', 's', 'stdout', '-f', 'json');
    expect(JSON.parse(one.out)).toEqual({ output_key: 'stdout', output_value: { 'node-1': 'ok\n' }, description: 'deploy_stdout of each node', output_error: '' });
    const all = await ospctl('stack', 'output', 'show', 's', '--all', '-f', 'json');
    expect(JSON.parse(all.out)).toEqual([
      expect.objectContaining({ output_key: 'stdout' }), { output_key: 'broken', output_value: null, description: '', output_error: 'resource deploy failed' },
    ]);
    expect((await ospctl('stack', 'output', 'show', 's', 'nope')).err).toContain('stack s has no output "nope" (outputs: stdout, broken)');
    expect((await ospctl('stack', 'output', 'show', 's')).code).toBe(2);
    engine.failureList = [{ stackPath: 's/group/0', resource: 'deploy', node: 'node-1', config: 'cfg', statusCode: 3, stderrTail: 'boom', statusReason: 'exit 3' }];
    const f = await ospctl('stack', 'failures', 's', '-f', 'json');
    expect(JSON.parse(f.out)).toEqual([{ stack_path: 's/group/0', resource: 'deploy', node: 'node-1', config: 'cfg', status_code: 3, stderr_tail: 'boom', status_reason: 'exit 3' }]);
    const missing = await ospctl('stack', 'show', 'gone');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('stack gone: no such stack');
  });

  it('resource list pages through every resource with --nested-depth; resource show has properties and attributes', async () => {
    const root = files({ 'top.yaml': 'heat_template_version: wallaby\n' });
    await ospctl('stack', 'create', 'big', '-t', path.join(root, 'top.yaml'));
    const view = (stackPath: string, name: string): ResourceView => ({
      name, type: 'OS::Heat::SoftwareDeployment', stackPath, physicalId: `p-${name}`, status: 'CREATE_COMPLETE', statusReason: '', updatedAt: '', requiredBy: [],
    });
    engine.resourceViews = [view('big', 'group'), ...Array.from({ length: 2500 }, (_v, i) => view(`big/group/${i}`, 'deploy'))];
    const top = await ospctl('stack', 'resource', 'list', 'big', '-f', 'json');
    expect(JSON.parse(top.out)).toHaveLength(1);
    const nested = await ospctl('stack', 'resource', 'list', 'big', '--nested-depth', '2', '-f', 'json');
    const rows = JSON.parse(nested.out) as { stack_path: string }[];
    expect(rows).toHaveLength(2501);
    expect(new Set(rows.map((r) => r.stack_path)).size).toBe(2501);
    const one = await ospctl('stack', 'resource', 'show', 'big/group/7', 'deploy', '-f', 'json');
    expect(JSON.parse(one.out)).toMatchObject({ resource_name: 'deploy', stack_path: 'big/group/7', properties: { count: 3, password: '******' }, attributes: { refs: ['a', 'b'] } });
  });

  it('event list pages; --follow prints the backlog then live events', async () => {
    const root = files({ 'top.yaml': 'heat_template_version: wallaby\n' });
    await ospctl('stack', 'create', 'ev', '-t', path.join(root, 'top.yaml'));
    for (let i = 0; i < 1200; i++) engine.emit({ stack: 'ev', stackPath: 'ev', resource: `r${i}`, physicalId: '', status: 'CREATE_COMPLETE', statusReason: 'state changed', at: '2026-01-01T00:00:00.000Z' });
    const list = await ospctl('stack', 'event', 'list', 'ev', '-f', 'json');
    const ids = (JSON.parse(list.out) as { id: number }[]).map((e) => e.id);
    expect(ids).toEqual(Array.from({ length: 1201 }, (_v, i) => i + 1));

    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { lines.push(...String(c).split('\n').filter(Boolean)); return true; });
    const following = run(['--config', configFile, 'stack', 'event', 'list', 'ev', '--follow', '-f', 'json']);
    await waitFor('the backlog', () => lines.length === 1201, { timeoutMs: 10_000 });
    engine.emit({ stack: 'ev', stackPath: 'ev/group/0', resource: 'deploy', physicalId: 'x', status: 'CREATE_FAILED', statusReason: 'exit 3', at: '2026-01-01T00:00:01.000Z' });
    engine.emit({ stack: 'other', stackPath: 'other', resource: 'other', physicalId: '', status: 'CREATE_COMPLETE', statusReason: '', at: '' });
    await waitFor('the live event', () => lines.length === 1202, { timeoutMs: 10_000 });
    process.emit('SIGINT');
    expect(await following).toBe(0);
    expect(JSON.parse(lines[1201])).toMatchObject({ id: 1202, stack_path: 'ev/group/0', resource_name: 'deploy', resource_status: 'CREATE_FAILED' });
    await waitFor('the watch to unsubscribe', () => engine.listenerCount === 0, { timeoutMs: 5000 });
  });

  it('WatchStackEvents resumes after a marker without losing or repeating an event committed meanwhile', async () => {
    engine.stacks.set('w', { ...(await engine.create({ name: 'w', files: {}, template: 't', environments: [], parameters: {}, actor: 't' }) as StackDetail), steps: [] });
    for (let i = 0; i < 4; i++) engine.emit({ stack: 'w', stackPath: 'w', resource: `r${i}`, physicalId: '', status: 'CREATE_COMPLETE', statusReason: '', at: '' });
    const got: WireEvent[] = [];
    const call = client().watchStackEvents({ stack: 'w', marker: '2' }, md());
    call.on('data', (m: WatchStackEventsResponse) => got.push(m.event!));
    call.on('error', () => undefined);
    await waitFor('the backlog after 2', () => got.length === 3, { timeoutMs: 5000 });
    engine.emit({ stack: 'w', stackPath: 'w', resource: 'live', physicalId: '', status: 'CREATE_COMPLETE', statusReason: '', at: '' });
    await waitFor('the live event', () => got.length === 4, { timeoutMs: 5000 });
    call.cancel();
    expect(got.map((e) => e.id)).toEqual([3, 4, 5, 6]);
    const bad = await new Promise<ServiceError>((resolve) => {
      const c = client().watchStackEvents({ stack: 'w', marker: 'x1' }, md());
      c.on('error', resolve);
      c.on('data', () => undefined);
    });
    expect(bad.details).toContain('marker: "x1": expected an event id');
  });

  it('signal passes status, reason, data and id; bad --data is a usage error', async () => {
    const r = await ospctl('stack', 'signal', 'top', 'handle', '--data', '{"a":1}', '--reason', 'done', '--status', 'FAILURE', '--id', '7');
    expect(r.code).toBe(0);
    expect(signals.at(-1)).toEqual(['top', 'handle', { status: 'FAILURE', reason: 'done', data: '{"a":1}', id: '7' }]);
    await ospctl('stack', 'signal', 'top', 'handle');
    expect(signals.at(-1)).toEqual(['top', 'handle', { status: 'SUCCESS', reason: '', data: '', id: '' }]);
    const bad = await ospctl('stack', 'signal', 'top', 'handle', '--data', '{nope');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--data {nope: not JSON');
    const missing = await ospctl('stack', 'signal', 'top', 'missing');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no resource missing');
  });

  it('refuses a timeout that is not whole minutes, naming the field', async () => {
    const e = await new Promise<ServiceError>((resolve) => client().createStack({
      stack: 's', files: {}, template: 't.yaml', environments: [], parameters: {}, timeoutMs: 90_000, dryRun: false,
    }, md(), (err) => resolve(err!)));
    expect(e.details).toContain('timeout_ms: 90000: expected whole minutes');
    expect(engine.requests).toHaveLength(0);
  });

  it('accepts a bundle larger than the 16 MiB default request limit (the bundle limit is 32 MiB)', async () => {
    const scripts: Record<string, Buffer> = {};
    for (let i = 0; i < 24; i++) scripts[`s/${i}.sh`] = Buffer.alloc(1_000_000, 0x61 + (i % 26));
    const refs = Object.keys(scripts).map((p, i) => `  c${i}:\n    type: OS::Heat::SoftwareConfig\n    properties: {config: {get_file: ${p}}}\n`).join('');
    const root = files({ 'top.yaml': `heat_template_version: wallaby\nresources:\n${refs}`, ...scripts });
    const r = await ospctl('stack', 'create', 'large', '-t', path.join(root, 'top.yaml'), '--dry-run');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const sent = engine.requests[0].files;
    expect(Object.values(sent).reduce((n, c) => n + c.length, 0)).toBeGreaterThan(24_000_000);
  });
});
