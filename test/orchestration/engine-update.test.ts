import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { engineWith, isPlan, openTestDb, request, settle, thingPlugin, type TestDb } from './engine-helpers.js';

const v1 = `
  heat_template_version: wallaby
  resources:
    same: {type: Test::Thing, properties: {input: s}}
    inplace: {type: Test::Thing, properties: {input: one}}
    replaced: {type: Test::Thing, properties: {immutable: one}}
    reader: {type: Test::Thing, properties: {input: {get_attr: [inplace, out]}}}
    removed_base: {type: Test::Thing}
    removed_top: {type: Test::Thing, properties: {input: {get_resource: removed_base}}}
`;
const v2 = `
  heat_template_version: wallaby
  resources:
    same: {type: Test::Thing, properties: {input: s}}
    inplace: {type: Test::Thing, properties: {input: two}}
    replaced: {type: Test::Thing, properties: {immutable: two}}
    reader: {type: Test::Thing, properties: {input: {get_attr: [inplace, out]}}}
    added: {type: Test::Thing, properties: {input: {get_resource: same}}}
`;

describe('stack engine: update and delete', () => {
  let t: TestDb;
  beforeEach(async () => { t = await openTestDb(); });
  afterEach(async () => { await t.close(); });

  it('dry-run update plans without changing anything; the update then does exactly that', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('u', { 'top.yaml': v1 }));
    expect(await settle(engine, 'u')).toBe('CREATE_COMPLETE');
    const eventsBefore = (await engine.events('u', {})).length;
    const plan = await engine.update(request('u', { 'top.yaml': v2 }, { dryRun: true }));
    expect(isPlan(plan) && plan).toEqual({ create: ['added'], update: ['inplace', 'reader'], replace: ['replaced'], delete: ['removed_base', 'removed_top'], unchanged: ['same'] });
    expect((await engine.events('u', {})).length).toBe(eventsBefore);
    expect((await engine.get('u')).status).toBe('CREATE_COMPLETE');

    thing.calls.length = 0;
    await engine.update(request('u', { 'top.yaml': v2 }));
    expect(await settle(engine, 'u')).toBe('UPDATE_COMPLETE');
    const ops = thing.calls.filter((c) => c.op !== 'ready').map((c) => `${c.op} ${c.name}`);
    expect(ops.filter((o) => o.endsWith(' same'))).toEqual([]);
    expect(ops).toContain('update inplace');
    expect(ops).toContain('update reader');
    expect(thing.calls.find((c) => c.op === 'update' && c.name === 'reader')?.props).toEqual({ input: 'two' });
    expect(ops).toEqual(expect.arrayContaining(['delete replaced', 'create replaced', 'delete removed_top', 'delete removed_base', 'create added']));
    expect(ops.indexOf('delete replaced')).toBeLessThan(ops.indexOf('create replaced'));
    expect(ops).toContain('create added');
    // Removed ones go last, the dependent before what it depends on.
    expect(ops.indexOf('delete removed_top')).toBeLessThan(ops.indexOf('delete removed_base'));
    expect(ops.indexOf('delete removed_base')).toBeGreaterThan(ops.indexOf('create added'));
    const rs = Object.fromEntries((await engine.resources('u', 0)).map((r) => [r.name, r.status]));
    expect(rs).toEqual({ same: 'CREATE_COMPLETE', inplace: 'UPDATE_COMPLETE', reader: 'UPDATE_COMPLETE', replaced: 'CREATE_COMPLETE', added: 'CREATE_COMPLETE' });
    expect((await engine.resource('u', 'inplace')).attributes.out).toBe('two');

    // The same template again: nothing is touched.
    thing.calls.length = 0;
    const noop = await engine.update(request('u', { 'top.yaml': v2 }, { dryRun: true }));
    expect(isPlan(noop) && noop.unchanged).toEqual(['added', 'inplace', 'reader', 'replaced', 'same']);
    await engine.update(request('u', { 'top.yaml': v2 }));
    expect(await settle(engine, 'u')).toBe('UPDATE_COMPLETE');
    expect(thing.calls).toEqual([]);
  });

  it('parameter_defaults reach nested stacks on update (as in Heat): a changed default updates only what uses it; an identical request touches nothing', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    const files = (ntp: string) => ({
      'top.yaml': `
        heat_template_version: wallaby
        resources:
          svc: {type: svc.yaml}
          other: {type: other.yaml}
      `,
      'svc.yaml': `
        heat_template_version: wallaby
        parameters:
          NtpServer: {type: string, default: none}
        resources:
          conf: {type: Test::Thing, properties: {input: {get_param: NtpServer}}}
      `,
      'other.yaml': `
        heat_template_version: wallaby
        resources:
          fixed: {type: Test::Thing, properties: {input: fixed}}
      `,
      'env.yaml': `parameter_defaults:\n  NtpServer: ${ntp}\n`,
    });
    await engine.create(request('nest', files('a.example'), { environments: ['env.yaml'] }));
    expect(await settle(engine, 'nest')).toBe('CREATE_COMPLETE');
    expect(thing.calls.find((c) => c.op === 'create' && c.name === 'conf')?.props).toEqual({ input: 'a.example' });

    thing.calls.length = 0;
    await engine.update(request('nest', files('a.example'), { environments: ['env.yaml'] }));
    expect(await settle(engine, 'nest')).toBe('UPDATE_COMPLETE');
    expect(thing.calls).toEqual([]);

    await engine.update(request('nest', files('b.example'), { environments: ['env.yaml'] }));
    expect(await settle(engine, 'nest')).toBe('UPDATE_COMPLETE');
    expect(thing.calls.filter((c) => c.op !== 'ready').map((c) => `${c.op} ${c.name} ${JSON.stringify(c.props)}`)).toEqual(['update conf {"input":"b.example"}']);
  });

  it('a failed update can be retried; the failed resource is redone', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('r', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {fail: first try}}\n' }));
    expect(await settle(engine, 'r')).toBe('CREATE_FAILED');
    await engine.update(request('r', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  a: {type: Test::Thing, properties: {input: ok}}\n' }));
    expect(await settle(engine, 'r')).toBe('UPDATE_COMPLETE');
    expect((await engine.resources('r', 0))[0].status).toBe('CREATE_COMPLETE');
  });

  it('deletes in reverse dependency order and the stack is gone; a failed delete is DELETE_FAILED and can be retried', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('d', { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        base: {type: Test::Thing}
        mid: {type: Test::Thing, properties: {input: {get_resource: base}}, depends_on: [undeletable]}
        top: {type: Test::Thing, properties: {input: {get_attr: [mid, out]}}}
        undeletable: {type: Test::Thing, depends_on: [base]}
    ` }));
    expect(await settle(engine, 'd')).toBe('CREATE_COMPLETE');
    thing.calls.length = 0;
    await engine.delete('d', 'test');
    expect(await settle(engine, 'd')).toBe('DELETE_FAILED');
    const left = Object.fromEntries((await engine.resources('d', 0)).map((r) => [r.name, r.status]));
    expect(left).toEqual({ base: 'CREATE_COMPLETE', undeletable: 'DELETE_FAILED' });
    const order = thing.calls.filter((c) => c.op === 'delete').map((c) => c.name);
    expect(order).toEqual(expect.arrayContaining(['top', 'mid']));
    expect(order.indexOf('top')).toBeLessThan(order.indexOf('mid'));
    expect(order).not.toContain('base');

    const plain = thingPlugin();
    const deleting = engineWith(t, [{ ...plain, delete: async () => undefined }]);
    await deleting.delete('d', 'test');
    expect(await settle(deleting, 'd')).toBe('GONE');
    expect(await t.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM stack_resources')).toEqual({ n: 0 });
  });
});
