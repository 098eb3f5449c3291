import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOspError } from '../../common/errors.js';
import type { StackEvent } from '../../server/orchestration/engine/contract.js';
import { engineWith, openTestDb, request, settle, thingPlugin, until, type TestDb } from './engine-helpers.js';

const chain = `
  heat_template_version: wallaby
  parameters:
    greeting: {type: string, default: hello}
  resources:
    a:
      type: Test::Thing
      properties: {input: {get_param: greeting}}
    b:
      type: Test::Thing
      properties: {input: {list_join: ['-', [{get_attr: [a, out]}, b]]}}
    c:
      type: Test::Thing
      properties: {input: {get_resource: b}}
  outputs:
    c_out: {value: {get_attr: [c, out]}, description: the end}
`;

describe('stack engine: create', () => {
  let t: TestDb;
  beforeEach(async () => { t = await openTestDb(); });
  afterEach(async () => { await t.close(); });

  it('creates in dependency order with live attributes, events per status, outputs on get', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    const events: StackEvent[] = [];
    engine.onEvent((e) => events.push(e));
    await engine.create(request('s1', { 'top.yaml': chain }));
    expect(await settle(engine, 's1')).toBe('CREATE_COMPLETE');
    expect(thing.calls.filter((c) => c.op === 'create').map((c) => c.name)).toEqual(['a', 'b', 'c']);
    expect(thing.calls.find((c) => c.name === 'b' && c.op === 'create')?.props).toEqual({ input: 'hello-b' });
    expect(thing.calls.find((c) => c.name === 'c' && c.op === 'create')?.props).toEqual({ input: 's1/b' });
    const d = await engine.get('s1');
    expect(d.outputs).toEqual([{ name: 'c_out', description: 'the end', value: 's1/b' }]);
    expect(d.parameters).toEqual({ greeting: 'hello' });
    expect(d).toMatchObject({ resourcesTotal: 3, resourcesComplete: 3, status: 'CREATE_COMPLETE' });
    const stored = await engine.events('s1', {});
    expect(stored.map((e) => `${e.resource} ${e.status}`)).toEqual([
      's1 CREATE_IN_PROGRESS', 'a CREATE_IN_PROGRESS', 'a CREATE_COMPLETE', 'b CREATE_IN_PROGRESS', 'b CREATE_COMPLETE',
      'c CREATE_IN_PROGRESS', 'c CREATE_COMPLETE', 's1 CREATE_COMPLETE']);
    expect(stored.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(events).toEqual(stored);
    expect(await engine.events('s1', { after: 6 })).toHaveLength(2);
    const rs = await engine.resources('s1', 0);
    expect(rs.find((r) => r.name === 'a')).toMatchObject({ physicalId: 's1/a', status: 'CREATE_COMPLETE', requiredBy: ['b'], stackPath: 's1' });
    const detail = await engine.resource('s1', 'b');
    expect(detail.properties).toEqual({ input: 'hello-b' });
    expect(detail.attributes).toEqual({ out: 'hello-b', name: 's1/b' });
  });

  it('runs independent resources in parallel, never more than the concurrency', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing], { concurrency: 3 });
    const resources = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`r${i}`, { type: 'Test::Thing', properties: { gate: `g${i}` } }]));
    await engine.create(request('wide', { 'top.yaml': JSON.stringify({ heat_template_version: 'wallaby', resources }) }));
    await until(() => thing.running === 3);
    await new Promise((r) => setTimeout(r, 30));
    expect(thing.running).toBe(3);
    for (let i = 0; i < 10; i++) thing.gates.open(`g${i}`);
    expect(await settle(engine, 'wide')).toBe('CREATE_COMPLETE');
    expect(thing.maxRunning).toBe(3);
  });

  it('starts a resource as soon as its own dependencies complete, not a whole level later', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('eager', { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        slow: {type: Test::Thing, properties: {gate: slow}}
        fast: {type: Test::Thing}
        after_fast: {type: Test::Thing, properties: {input: {get_resource: fast}}}
    ` }));
    await until(() => thing.calls.some((c) => c.name === 'after_fast'));
    // A level-by-level scheduler would hold after_fast until slow (same level as fast) completed.
    expect((await engine.resources('eager', 0)).find((r) => r.name === 'slow')?.status).toBe('CREATE_IN_PROGRESS');
    thing.gates.open('slow');
    expect(await settle(engine, 'eager')).toBe('CREATE_COMPLETE');
  });

  it('a failure fails the resource and the stack, starts nothing new, lets running ones finish, keeps the failure details', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing], { concurrency: 2 });
    await engine.create(request('bad', { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        a_broken: {type: Test::Thing, properties: {fail: exit status 2}}
        b_running: {type: Test::Thing, properties: {gate: run}}
        z_later: {type: Test::Thing}
        dependent: {type: Test::Thing, properties: {input: {get_resource: a_broken}}}
    ` }));
    await until(async () => (await engine.resources('bad', 0)).some((r) => r.status === 'CREATE_FAILED'));
    thing.gates.open('run');
    expect(await settle(engine, 'bad')).toBe('CREATE_FAILED');
    const rs = Object.fromEntries((await engine.resources('bad', 0)).map((r) => [r.name, r]));
    expect(rs.a_broken).toMatchObject({ status: 'CREATE_FAILED', statusReason: 'exit status 2' });
    expect(rs.b_running.status).toBe('CREATE_COMPLETE');
    expect(rs.z_later.status).toBe('INIT_COMPLETE');
    expect(rs.dependent.status).toBe('INIT_COMPLETE');
    expect((await engine.get('bad')).statusReason).toBe('Resource CREATE failed: a_broken: exit status 2');
    expect(await engine.failures('bad')).toEqual([{ stackPath: 'bad', resource: 'a_broken', node: 'node-1', config: 'cfg', statusCode: 2, stderrTail: 'boom', statusReason: 'exit status 2' }]);
  });

  it('refuses a bad template with every problem and stores nothing', async () => {
    const engine = engineWith(t, [thingPlugin()]);
    const e = await engine.create(request('nope', { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        a: {type: Test::Unknown}
        b: {type: Test::Thing, properties: {input: {get_attr: [a, nothing]}}}
        c: {type: Test::Thing, properties: {input: {get_resource: zzz}}}
    ` })).catch((x: unknown) => x);
    expect(isOspError(e) && e.code).toBe('TEMPLATE_INVALID');
    expect((e as Error).message).toContain('The Resource Type (Test::Unknown) could not be found.');
    expect((e as Error).message).toContain('"zzz"');
    expect((await engine.list({})).stacks).toEqual([]);
    const names = await engine.create(request('bad name!', { 'top.yaml': chain })).catch((x: unknown) => x);
    expect(isOspError(names) && names.details.field).toBe('name');
  });

  it('refuses a second stack of the same name, and a second operation while one runs', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('busy', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {gate: busy}}\n' }));
    const again = await engine.create(request('busy', { 'top.yaml': chain })).catch((x: unknown) => x);
    expect(isOspError(again) && again.code).toBe('STACK_EXISTS');
    const upd = await engine.update(request('busy', { 'top.yaml': chain })).catch((x: unknown) => x);
    expect(isOspError(upd) && upd.code).toBe('STACK_IN_PROGRESS');
    expect((upd as Error).message).toMatch(/^stack busy: CREATE in progress since \d{4}-\d\d-\d\dT/);
    const missing = await engine.get('nobody').catch((x: unknown) => x);
    expect(isOspError(missing) && missing.code).toBe('STACK_NOT_FOUND');
    thing.gates.open('busy');
    expect(await settle(engine, 'busy')).toBe('CREATE_COMPLETE');
  });

  it('a delete during a create cancels the create, then deletes the stack (as Heat does)', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('stuck', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {gate: never}}\n' }));
    expect((await engine.delete('stuck', 'test')).status).toBe('DELETE_IN_PROGRESS');
    expect(await settle(engine, 'stuck')).toBe('GONE');
  });

  it('dry-run create answers the plan and stores nothing', async () => {
    const engine = engineWith(t, [thingPlugin()]);
    const plan = await engine.create(request('dry', { 'top.yaml': chain }, { dryRun: true }));
    expect(plan).toEqual({ create: ['a', 'b', 'c'], update: [], replace: [], delete: [], unchanged: [] });
    expect((await engine.list({})).stacks).toEqual([]);
    expect(await t.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM stack_events')).toEqual({ n: 0 });
  });

  it('times out: the stack fails "timed out after N min" and the running resource is aborted', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('late', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {readyGate: never}}\n' }, { timeoutMins: 1 }));
    await until(() => thing.calls.some((c) => c.op === 'ready'));
    // Make the minute pass: the stored start of the operation moves back, and a new engine takes over.
    await engine.stop();
    await t.db.run("UPDATE stacks SET operation_started_at = '2000-01-01T00:00:00.000Z'");
    const engine2 = engineWith(t, [thing]);
    await engine2.start();
    expect(await settle(engine2, 'late')).toBe('CREATE_FAILED');
    expect((await engine2.get('late')).statusReason).toBe('timed out after 1 min');
    expect((await engine2.resources('late', 0))[0]).toMatchObject({ status: 'CREATE_FAILED', statusReason: 'timed out after 1 min' });
  });
});
