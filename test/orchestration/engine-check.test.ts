import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ResourceFailure, type ResourceContext, type ResourcePlugin, type StackEvent } from '../../server/orchestration/engine/contract.js';
import type { StackEngine } from '../../server/orchestration/engine/engine.js';
import { engineWith, Gates, openTestDb, request, settle, thingPlugin, until, type TestDb } from './engine-helpers.js';

/**
 * Test::Thing with a check: fails when its stored input is 'broken', waits
 * on the gate named by its stored input when that starts with 'gate:'.
 */
function checkedThing(gates = new Gates()) {
  const thing = thingPlugin(gates);
  const checked: string[] = [];
  const plugin: ResourcePlugin = {
    ...thing,
    async check(ctx: ResourceContext, data: Record<string, unknown>) {
      checked.push(`${ctx.stack.path}/${ctx.name}`);
      const input = String(data.input);
      if (input.startsWith('gate:')) {
        await new Promise<void>((resolveP, reject) => {
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
          void gates.get(input.slice(5)).then(resolveP);
        });
      }
      if (input.endsWith('broken')) throw new ResourceFailure(`${ctx.name} is broken`);
    },
  };
  return { thing, plugin, checked, gates };
}

const files = {
  'top.yaml': `
    heat_template_version: wallaby
    resources:
      fine: {type: Test::Thing, properties: {input: ok}}
      bad: {type: Test::Thing, properties: {input: broken}}
      val: {type: OS::Heat::Value, properties: {value: 3}}
      group:
        type: OS::Heat::ResourceGroup
        properties:
          count: 2
          resource_def: {type: Test::Thing, properties: {input: "m%index%"}}
      inner: {type: child.yaml}
  `,
  'child.yaml': `
    heat_template_version: wallaby
    resources:
      deep: {type: Test::Thing, properties: {input: deep-broken}}
  `,
};

/** Every row of the tree as stored, status aside: what CHECK must not change. */
async function storedRows(t: TestDb): Promise<unknown[]> {
  return t.db.all('SELECT stack_id, name, type, properties, data, physical_id, depends_on FROM stack_resources ORDER BY stack_id, name');
}

describe('stack engine: CHECK', () => {
  let t: TestDb;
  let engine: StackEngine;
  beforeEach(async () => { t = await openTestDb(); });
  afterEach(async () => { await engine?.stop(); await t.close(); });

  it('checks every resource of the tree, nested stacks included, records each outcome and changes nothing', async () => {
    const c = checkedThing();
    engine = engineWith(t, [c.plugin]);
    await engine.create(request('chk', files));
    expect(await settle(engine, 'chk')).toBe('CREATE_COMPLETE');
    const before = await storedRows(t);
    const callsBefore = c.thing.calls.length;
    const events: StackEvent[] = [];
    engine.onEvent((e) => events.push(e));

    const started = await engine.check('chk', 'tester');
    expect(started.status).toBe('CHECK_IN_PROGRESS');
    expect(await settle(engine, 'chk')).toBe('CHECK_FAILED');

    const detail = await engine.get('chk');
    expect(detail.statusReason).toBe('Resource CHECK failed: bad: bad is broken; inner: nested stack chk/inner: deep: deep is broken');
    const byPath = Object.fromEntries((await engine.resources('chk', 5)).map((r) => [`${r.stackPath}/${r.name}`, [r.status, r.statusReason]]));
    expect(byPath).toEqual({
      'chk/fine': ['CHECK_COMPLETE', 'state changed'],
      'chk/bad': ['CHECK_FAILED', 'bad is broken'],
      'chk/val': ['CHECK_COMPLETE', 'no check for this type'],
      'chk/group': ['CHECK_COMPLETE', 'state changed'],
      'chk/group/0': ['CHECK_COMPLETE', 'state changed'],
      'chk/group/1': ['CHECK_COMPLETE', 'state changed'],
      'chk/inner': ['CHECK_FAILED', 'nested stack chk/inner: deep: deep is broken'],
      'chk/inner/deep': ['CHECK_FAILED', 'deep is broken'],
    });
    expect(c.checked.sort()).toEqual(['chk/bad', 'chk/fine', 'chk/group/0', 'chk/group/1', 'chk/inner/deep']);
    // No create, update, delete or ready: only statuses moved.
    expect(c.thing.calls.length).toBe(callsBefore);
    expect(await storedRows(t)).toEqual(before);

    const stackEvents = events.filter((e) => e.resource === e.stackPath).map((e) => `${e.stackPath} ${e.status}`);
    expect(stackEvents).toEqual(expect.arrayContaining(['chk/group CHECK_IN_PROGRESS', 'chk/group CHECK_COMPLETE', 'chk/inner CHECK_FAILED', 'chk CHECK_FAILED']));
    const badEvents = events.filter((e) => e.resource === 'bad').map((e) => e.status);
    expect(badEvents).toEqual(['CHECK_IN_PROGRESS', 'CHECK_FAILED']);
    // The stored event log holds them too (events of the tree, numbered per stack tree).
    expect((await engine.events('chk', {})).filter((e) => e.status.startsWith('CHECK_')).length).toBe(events.length);
  });

  it('a healthy stack is CHECK_COMPLETE; a later update leaves checked resources alone and redoes a failed one', async () => {
    const c = checkedThing();
    engine = engineWith(t, [c.plugin]);
    const tmpl = (input: string) => ({ 'top.yaml': `
      heat_template_version: wallaby
      resources:
        a: {type: Test::Thing, properties: {input: ok}}
        b: {type: Test::Thing, properties: {input: ${input}}}
    ` });
    await engine.create(request('ok', tmpl('ok2')));
    expect(await settle(engine, 'ok')).toBe('CREATE_COMPLETE');
    await engine.check('ok', 'tester');
    expect(await settle(engine, 'ok')).toBe('CHECK_COMPLETE');
    expect((await engine.get('ok')).statusReason).toBe('Stack CHECK completed successfully');

    c.thing.calls.length = 0;
    await engine.update(request('ok', tmpl('ok2')));
    expect(await settle(engine, 'ok')).toBe('UPDATE_COMPLETE');
    expect(c.thing.calls).toEqual([]);

    // b's stored input is made 'broken' behind the engine's back: CHECK finds it, the next update redoes it.
    await t.db.run(`UPDATE stack_resources SET data = json_set(data, '$.input', 'broken') WHERE name = 'b'`);
    await engine.check('ok', 'tester');
    expect(await settle(engine, 'ok')).toBe('CHECK_FAILED');
    await engine.update(request('ok', tmpl('ok2')));
    expect(await settle(engine, 'ok')).toBe('UPDATE_COMPLETE');
    expect(c.thing.calls.map((x) => `${x.op} ${x.name}`)).toEqual(['update b', 'ready b']);
    const b = (await engine.resources('ok', 0)).find((r) => r.name === 'b')!;
    expect(b).toMatchObject({ status: 'UPDATE_COMPLETE', statusReason: 'state changed' });
  });

  it('one operation at a time: no CHECK while a create runs, no update or second CHECK while a CHECK runs', async () => {
    const c = checkedThing();
    engine = engineWith(t, [c.plugin]);
    await engine.create(request('busy', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {input: "gate:chk", gate: made}}\n' }));
    await expect(engine.check('busy', 'tester')).rejects.toMatchObject({ code: 'STACK_IN_PROGRESS' });
    c.gates.open('made');
    expect(await settle(engine, 'busy')).toBe('CREATE_COMPLETE');

    await engine.check('busy', 'tester');
    await until(() => c.checked.length === 1);
    await expect(engine.check('busy', 'tester')).rejects.toMatchObject({ code: 'STACK_IN_PROGRESS', message: expect.stringContaining('CHECK in progress') });
    await expect(engine.update(request('busy', { 'top.yaml': 'heat_template_version: wallaby\nresources: {}\n' }))).rejects.toMatchObject({ code: 'STACK_IN_PROGRESS' });
    c.gates.open('chk');
    expect(await settle(engine, 'busy')).toBe('CHECK_COMPLETE');
    await expect(engine.check('nope', 'tester')).rejects.toMatchObject({ code: 'STACK_NOT_FOUND' });
  });

  it('a resource never created fails its check; a CHECK cut by a restart is run again, never left in progress', async () => {
    const c = checkedThing();
    engine = engineWith(t, [c.plugin]);
    await engine.create(request('cut', { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        a: {type: Test::Thing, properties: {input: "gate:later"}}
        b: {type: Test::Thing, properties: {fail: nope}, depends_on: [a]}
        c: {type: Test::Thing, properties: {input: ok}, depends_on: [b]}
    ` }));
    expect(await settle(engine, 'cut')).toBe('CREATE_FAILED');
    await engine.check('cut', 'tester');
    await until(() => c.checked.includes('cut/a'));
    await engine.stop();
    expect((await engine.get('cut')).status).toBe('CHECK_IN_PROGRESS');

    const again = checkedThing();
    again.gates.open('later');
    engine = engineWith(t, [again.plugin]);
    await engine.start();
    expect(await settle(engine, 'cut')).toBe('CHECK_FAILED');
    const st = Object.fromEntries((await engine.resources('cut', 0)).map((r) => [r.name, [r.status, r.statusReason]]));
    expect(st).toEqual({
      a: ['CHECK_COMPLETE', 'state changed'],
      // CREATE_FAILED with stored data (the failure's details): its plug-in's check decides, as in Heat.
      b: ['CHECK_COMPLETE', 'state changed'],
      c: ['CHECK_FAILED', 'resource c not created yet'],
    });
    expect(again.checked.sort()).toEqual(['cut/a', 'cut/b']);
  });

  it('a CHECK past the stack timeout fails cleanly', async () => {
    const c = checkedThing();
    engine = engineWith(t, [c.plugin]);
    await engine.create(request('slow', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {input: "gate:never"}}\n' }, { timeoutMins: 1 }));
    expect(await settle(engine, 'slow')).toBe('CREATE_COMPLETE');
    // The operation's start is stored; moving it back makes the timeout fire at once.
    await engine.check('slow', 'tester');
    await until(() => c.checked.length === 1);
    await engine.stop();
    await t.db.run(`UPDATE stacks SET operation_started_at = '2000-01-01T00:00:00.000Z' WHERE name = 'slow'`);
    engine = engineWith(t, [c.plugin]);
    await engine.start();
    expect(await settle(engine, 'slow')).toBe('CHECK_FAILED');
    expect((await engine.resources('slow', 0))[0]).toMatchObject({ status: 'CHECK_FAILED', statusReason: 'timed out after 1 min' });
  });
});
