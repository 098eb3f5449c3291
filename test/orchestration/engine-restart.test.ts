import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { engineWith, openTestDb, request, settle, thingPlugin, until, type TestDb } from './engine-helpers.js';

const template = `
  heat_template_version: wallaby
  resources:
    done: {type: Test::Thing, properties: {input: first}}
    waiting: {type: Test::Thing, properties: {readyGate: ack, input: {get_attr: [done, out]}}}
    after: {type: Test::Thing, properties: {input: {get_resource: waiting}}}
`;

describe('stack engine: stop and restart mid-operation', () => {
  let t: TestDb;
  beforeEach(async () => { t = await openTestDb(); });
  afterEach(async () => { await t.close(); });

  it('stop() leaves the operation in progress; a new engine re-observes in-flight resources, does not redo completed ones, and finishes', async () => {
    const first = thingPlugin();
    const engine = engineWith(t, [first]);
    await engine.create(request('rs', { 'top.yaml': template }));
    await until(() => first.calls.some((c) => c.op === 'ready' && c.name === 'waiting'));
    await engine.stop();
    const stopped = Object.fromEntries((await engine.resources('rs', 0)).map((r) => [r.name, r.status]));
    expect(stopped).toEqual({ done: 'CREATE_COMPLETE', waiting: 'CREATE_IN_PROGRESS', after: 'INIT_COMPLETE' });
    expect((await engine.get('rs')).status).toBe('CREATE_IN_PROGRESS');

    const second = thingPlugin();
    second.gates.open('ack');
    const engine2 = engineWith(t, [second]);
    await engine2.start();
    expect(await settle(engine2, 'rs')).toBe('CREATE_COMPLETE');
    expect(second.calls.map((c) => `${c.op} ${c.name}`)).toEqual(['ready waiting', 'create after', 'ready after']);
    expect((await engine2.resource('rs', 'after')).properties).toEqual({ input: 'rs/waiting' });
    await engine2.stop();
  });

  it('a resource cut before create stored anything fails with "ospd restarted mid-operation" unless its create is idempotent', async () => {
    const first = thingPlugin();
    const engine = engineWith(t, [first]);
    await engine.create(request('cut', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {gate: never}}\n' }));
    await engine.create(request('cut2', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {gate: never2}}\n' }));
    await until(() => first.calls.filter((c) => c.op === 'create').length === 2);
    await engine.stop();

    // cut: the plug-in can't create twice safely; cut2 is resumed by an engine whose plug-in can.
    const strict = thingPlugin();
    const engine2 = engineWith(t, [strict]);
    await t.db.run("UPDATE stacks SET status = 'CREATE_FAILED' WHERE name = 'cut2'");
    await engine2.start();
    expect(await settle(engine2, 'cut')).toBe('CREATE_FAILED');
    expect((await engine2.resources('cut', 0))[0]).toMatchObject({ status: 'CREATE_FAILED', statusReason: 'ospd restarted mid-operation' });
    expect(strict.calls).toEqual([]);
    await engine2.stop();

    await t.db.run("UPDATE stacks SET status = 'CREATE_IN_PROGRESS' WHERE name = 'cut2'");
    const lenient = thingPlugin();
    lenient.gates.open('never2');
    const engine3 = engineWith(t, [{ ...lenient, createIdempotent: true }]);
    await engine3.start();
    expect(await settle(engine3, 'cut2')).toBe('CREATE_COMPLETE');
    expect(lenient.calls.map((c) => c.op)).toEqual(['create', 'ready']);
  });

  it('an update stopped midway completes after restart, touching only what was left', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('up', { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        x: {type: Test::Thing, properties: {input: 1}}
        y: {type: Test::Thing, properties: {input: 1}}
    ` }));
    expect(await settle(engine, 'up')).toBe('CREATE_COMPLETE');
    await engine.update(request('up', { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        x: {type: Test::Thing, properties: {input: 2}}
        y: {type: Test::Thing, properties: {input: 2}, depends_on: [x]}
        z: {type: Test::Thing, properties: {gate: z}, depends_on: [y]}
    ` }));
    await until(() => thing.calls.some((c) => c.name === 'z'));
    await engine.stop();
    const again = thingPlugin();
    again.gates.open('z');
    const engine2 = engineWith(t, [{ ...again, createIdempotent: true }]);
    await engine2.start();
    expect(await settle(engine2, 'up')).toBe('UPDATE_COMPLETE');
    expect(again.calls.filter((c) => c.op !== 'ready').map((c) => `${c.op} ${c.name}`)).toEqual(['create z']);
    expect((await engine2.resource('up', 'y')).attributes.out).toBe(2);
  });
});

describe('stack engine: restart inside a nested stack', () => {
  let t: TestDb;
  beforeEach(async () => { t = await openTestDb(); });
  afterEach(async () => { await t.close(); });

  it('a ResourceGroup cut mid-create resumes its members: complete ones kept, in-flight ones re-observed', async () => {
    const files = { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        g:
          type: OS::Heat::ResourceGroup
          properties:
            count: 3
            resource_def: {type: Test::Thing, properties: {input: 'm-%index%', readyGate: 'slow-%index%'}}
      outputs:
        outs: {value: {get_attr: [g, out]}}
    ` };
    const first = thingPlugin();
    first.gates.open('slow-0');
    first.gates.open('slow-1');
    const engine = engineWith(t, [first]);
    await engine.create(request('gr', files));
    await until(() => first.calls.some((c) => c.op === 'ready' && c.name === '2'));
    await until(async () => (await engine.resources('gr', 1)).filter((r) => r.status === 'CREATE_COMPLETE').length === 2);
    await engine.stop();
    const second = thingPlugin();
    second.gates.open('slow-2');
    const engine2 = engineWith(t, [second]);
    await engine2.start();
    expect(await settle(engine2, 'gr')).toBe('CREATE_COMPLETE');
    expect(second.calls.map((c) => `${c.op} ${c.name}`)).toEqual(['ready 2']);
    expect((await engine2.get('gr')).outputs[0].value).toEqual(['m-0', 'm-1', 'm-2']);
    expect((await engine2.resources('gr', 1)).every((r) => r.status === 'CREATE_COMPLETE')).toBe(true);
    await engine2.stop();
  });
});
