import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOspError } from '../../common/errors.js';
import { engineWith, openTestDb, request, settle, thingPlugin, until, type TestDb } from './engine-helpers.js';

describe('stack engine: built-in resource types', () => {
  let t: TestDb;
  beforeEach(async () => { t = await openTestDb(); });
  afterEach(async () => { await t.close(); });

  it('RandomString: Heat character rules, sealed at rest, masked in answers, usable by get_attr', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('rnd', { 'top.yaml': `
      heat_template_version: wallaby
      resources:
        pw:
          type: OS::Heat::RandomString
          properties:
            length: 24
            character_classes: [{class: digits, min: 4}, {class: uppercase, min: 2}]
            character_sequences: [{sequence: '!@', min: 1}]
        user: {type: Test::Thing, properties: {input: {str_replace: {template: 'pass=$P', params: {$P: {get_attr: [pw, value]}}}}}}
        v: {type: OS::Heat::Value, properties: {value: {get_attr: [pw, value]}}}
      outputs:
        password: {value: {get_attr: [pw, value]}}
    ` }));
    expect(await settle(engine, 'rnd')).toBe('CREATE_COMPLETE');
    const value = String((thing.calls.find((c) => c.op === 'create')!.props!.input as string).slice('pass='.length));
    expect(value).toHaveLength(24);
    expect(value.replace(/[^0-9]/g, '').length).toBeGreaterThanOrEqual(4);
    expect(value.replace(/[^A-Z]/g, '').length).toBeGreaterThanOrEqual(2);
    expect(value).toMatch(/[!@]/);
    expect(value).toMatch(/^[0-9A-Z!@]+$/);
    const dump = JSON.stringify([await t.db.all('SELECT * FROM stack_resources'), await t.db.all('SELECT * FROM stack_events'), await t.db.all('SELECT * FROM stacks')]);
    expect(dump).not.toContain(value);
    const pw = await engine.resource('rnd', 'pw');
    expect(pw.attributes).toEqual({ value: '******' });
    expect(pw.physicalId).toBe('******');
    expect((await engine.resource('rnd', 'user')).properties).toEqual({ input: '******' });
    expect((await engine.resource('rnd', 'v')).attributes).toEqual({ value: '******' });
    expect((await engine.get('rnd')).outputs[0].value).toBe('******');
    expect(JSON.stringify(await engine.events('rnd', {}))).not.toContain(value);
    const bad = await engine.create(request('rnd2', { 'top.yaml': 'heat_template_version: wallaby\nresources:\n  pw: {type: OS::Heat::RandomString, properties: {length: 2, character_classes: [{class: digits, min: 3}]}}\n' }));
    expect(bad).toMatchObject({ name: 'rnd2' });
    expect(await settle(engine, 'rnd2')).toBe('CREATE_FAILED');
    expect((await engine.resources('rnd2', 0))[0].statusReason).toBe("property 'length': 2 is less than the sum of the minimums of character_classes and character_sequences (3)");
  });

  it('ResourceGroup: members in a nested stack, attributes, scale up, scale down with removal_policies, names never reused', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    const group = (count: number, removal = '[]') => ({ 'top.yaml': `
      heat_template_version: wallaby
      parameters:
        count: {type: number}
      resources:
        g:
          type: OS::Heat::ResourceGroup
          properties:
            count: {get_param: count}
            removal_policies: ${removal}
            resource_def:
              type: Test::Thing
              properties: {input: 'node-%index%'}
      outputs:
        refs: {value: {get_attr: [g, refs]}}
        outs: {value: {get_attr: [g, out]}}
        map: {value: {get_attr: [g, refs_map]}}
        attrs: {value: {get_attr: [g, attributes, out]}}
        first: {value: {get_attr: [g, resource.0.out]}}
        first_ref: {value: {get_attr: [g, resource.0]}}
    ` });
    const req = (count: number, removal?: string) => request('grp', group(count, removal), { parameters: { count: String(count) } });
    await engine.create(req(3));
    expect(await settle(engine, 'grp')).toBe('CREATE_COMPLETE');
    const out = (d: Awaited<ReturnType<typeof engine.get>>) => Object.fromEntries(d.outputs.map((o) => [o.name, o.value ?? o.error]));
    expect(out(await engine.get('grp'))).toEqual({
      refs: ['grp/g/0', 'grp/g/1', 'grp/g/2'], outs: ['node-0', 'node-1', 'node-2'],
      map: { 0: 'grp/g/0', 1: 'grp/g/1', 2: 'grp/g/2' }, attrs: { 0: 'node-0', 1: 'node-1', 2: 'node-2' },
      first: 'node-0', first_ref: 'grp/g/0',
    });
    const nested = await engine.resources('grp', 1);
    expect(nested.map((r) => `${r.stackPath} ${r.name}`)).toEqual(['grp g', 'grp/g 0', 'grp/g 1', 'grp/g 2']);
    expect((await engine.resources('grp', 0)).map((r) => r.name)).toEqual(['g']);

    thing.calls.length = 0;
    await engine.update(req(5));
    expect(await settle(engine, 'grp')).toBe('UPDATE_COMPLETE');
    expect(thing.calls.filter((c) => c.op !== 'ready').map((c) => `${c.op} ${c.name}`).sort()).toEqual(['create 3', 'create 4']);

    thing.calls.length = 0;
    await engine.update(req(3, '[{resource_list: ["1", "grp/g/3"]}]'));
    expect(await settle(engine, 'grp')).toBe('UPDATE_COMPLETE');
    expect(thing.calls.filter((c) => c.op !== 'ready').map((c) => `${c.op} ${c.name}`).sort()).toEqual(['delete 1', 'delete 3']);
    expect(out(await engine.get('grp')).outs).toEqual(['node-0', 'node-2', 'node-4']);

    thing.calls.length = 0;
    await engine.update(req(4, '[{resource_list: ["1", "grp/g/3"]}]'));
    expect(await settle(engine, 'grp')).toBe('UPDATE_COMPLETE');
    expect(thing.calls.filter((c) => c.op === 'create').map((c) => c.name)).toEqual(['5']);
    expect(out(await engine.get('grp')).outs).toEqual(['node-0', 'node-2', 'node-4', 'node-5']);

    await engine.delete('grp', 'test');
    expect(await settle(engine, 'grp')).toBe('GONE');
    expect(await t.db.get('SELECT COUNT(*) AS n FROM stacks')).toEqual({ n: 0 });
  });

  it('a template as a type: a nested stack with its parameters from properties, outputs as attributes, OS::stack_id', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    await engine.create(request('nest', {
      'top.yaml': `
        heat_template_version: wallaby
        resources:
          inner:
            type: lib/inner.yaml
            properties: {word: hi}
          user: {type: Test::Thing, properties: {input: {get_attr: [inner, shout]}}}
        outputs:
          shout: {value: {get_attr: [user, out]}}
          id: {value: {get_attr: [inner, OS::stack_id]}}
          ref: {value: {get_resource: inner}}
      `,
      'lib/inner.yaml': `
        heat_template_version: wallaby
        parameters:
          word: {type: string}
        resources:
          t: {type: Test::Thing, properties: {input: {str_replace: {template: W!, params: {W: {get_param: word}}}}}}
        outputs:
          shout: {value: {get_attr: [t, out]}}
      `,
    }));
    expect(await settle(engine, 'nest')).toBe('CREATE_COMPLETE');
    const d = await engine.get('nest');
    const outs = Object.fromEntries(d.outputs.map((o) => [o.name, o.value]));
    expect(outs.shout).toBe('hi!');
    expect(outs.id).toBe(outs.ref);
    expect(String(outs.id)).toMatch(/^[0-9a-f-]{36}$/);
    expect((await engine.resources('nest', 1)).map((r) => `${r.stackPath} ${r.name} ${r.status}`)).toEqual([
      'nest inner CREATE_COMPLETE', 'nest user CREATE_COMPLETE', 'nest/inner t CREATE_COMPLETE']);
    expect((await engine.resource('nest', 'inner/t')).attributes.out).toBe('hi!');
  });

  it('WaitCondition completes on its count of SUCCESS signals and fails on a FAILURE', async () => {
    const engine = engineWith(t, []);
    const tmpl = (count: number) => ({ 'top.yaml': `
      heat_template_version: wallaby
      resources:
        h: {type: OS::Heat::WaitConditionHandle}
        w: {type: OS::Heat::WaitCondition, properties: {handle: {get_resource: h}, count: ${count}, timeout: 30}}
      outputs:
        data: {value: {get_attr: [w, data]}}
    ` });
    await engine.create(request('wc', tmpl(2)));
    await until(async () => (await engine.resources('wc', 0)).some((r) => r.name === 'w' && r.status === 'CREATE_IN_PROGRESS'));
    await engine.signal('wc', 'h', { status: 'SUCCESS', data: 'one' });
    await new Promise((r) => setTimeout(r, 30));
    expect((await engine.get('wc')).status).toBe('CREATE_IN_PROGRESS');
    await engine.signal('wc', 'h', { id: 'x', data: { k: 2 } });
    expect(await settle(engine, 'wc')).toBe('CREATE_COMPLETE');
    expect(JSON.parse(String((await engine.get('wc')).outputs[0].value))).toEqual({ 1: 'one', x: { k: 2 } });
    const bad = await engine.signal('wc', 'w', {}).catch((e: unknown) => e);
    expect(isOspError(bad) && bad.details.field).toBe('resource');
    const badStatus = await engine.signal('wc', 'h', { status: 'MAYBE' }).catch((e: unknown) => e);
    expect(isOspError(badStatus) && badStatus.message).toBe('signal to wc/h: status "MAYBE": expected SUCCESS or FAILURE');

    await engine.create(request('wcf', tmpl(1)));
    await until(async () => (await engine.resources('wcf', 0)).some((r) => r.name === 'w' && r.status === 'CREATE_IN_PROGRESS'));
    await engine.signal('wcf', 'h', { status: 'FAILURE', reason: 'puppet failed' });
    expect(await settle(engine, 'wcf')).toBe('CREATE_FAILED');
    expect((await engine.get('wcf')).statusReason).toBe('Resource CREATE failed: w: WaitCondition: FAILURE signal: puppet failed');
  });

  it('hidden parameters: sealed in the store, masked in get, validate and the properties of resources using them', async () => {
    const thing = thingPlugin();
    const engine = engineWith(t, [thing]);
    const req = request('hid', { 'top.yaml': `
      heat_template_version: wallaby
      parameters:
        bmc_password: {type: string, hidden: true}
        site: {type: string}
      resources:
        a: {type: Test::Thing, properties: {input: {list_join: [':', [admin, {get_param: bmc_password}]]}}}
        empty: {type: OS::Heat::ResourceGroup, properties: {count: 0, resource_def: {type: Test::Thing}}}
    ` }, { parameters: { bmc_password: 's3cr3t-pw', site: 'lab' } });
    expect(await engine.validate(req)).toEqual({ parameters: { bmc_password: '******', site: 'lab' }, resources: [{ name: 'a', type: 'Test::Thing' }, { name: 'empty', type: 'OS::Heat::ResourceGroup' }], notes: [] });
    await engine.create(req);
    expect(await settle(engine, 'hid')).toBe('CREATE_COMPLETE');
    expect(thing.calls[0].props).toEqual({ input: 'admin:s3cr3t-pw' });
    const dump = JSON.stringify([await t.db.all('SELECT * FROM stack_resources'), await t.db.all('SELECT * FROM stack_events'), await t.db.all('SELECT * FROM stacks')]);
    expect(dump).not.toContain('s3cr3t-pw');
    expect((await engine.get('hid')).parameters).toEqual({ bmc_password: '******', site: 'lab' });
    expect((await engine.resource('hid', 'a')).properties).toEqual({ input: '******' });
    expect((await engine.resource('hid', 'a')).attributes).toEqual({ out: '******', name: 'hid/a' });
  });
});
