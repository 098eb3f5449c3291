import { afterEach, describe, expect, it } from 'vitest';
import { deploymentName, substituteInputs } from '../../server/orchestration/resources/deployment-doc.js';
import { softwareConfigStore } from '../../server/store/software-configs.js';
import { context, world, type World } from './software-helpers.js';

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

describe('OS::Heat::SoftwareConfig / StructuredConfig', () => {
  it('stores the config under a fresh id, exposes it as `config`, and deletes it with the resource', async () => {
    w = await world(0);
    const p = w.plugins.get('OS::Heat::SoftwareConfig')!;
    const props = { group: 'script', config: '#!/bin/sh\necho hi\n', inputs: [{ name: 'foo', default: 'x' }], outputs: [{ name: 'result' }] };
    expect(p.validate!(props)).toEqual([]);
    const data = await p.create(context('Config'), props);
    const id = p.reference(data);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(p.attribute(data, 'config')).toBe(props.config);
    const row = await softwareConfigStore.get(w.db, id);
    expect(row).toMatchObject({ group: 'script', config: props.config, inputs: [{ name: 'foo', type: 'String', default: 'x' }], outputs: [{ name: 'result' }], resourceName: 'Config' });
    // Immutable like Heat's: a second create is a second config.
    expect(p.reference(await p.create(context('Config'), props))).not.toBe(id);
    expect(p.replaceOn).toBe('*');
    await p.delete(context('Config'), data);
    expect(await softwareConfigStore.get(w.db, id)).toBeUndefined();
    await p.delete(context('Config'), data);
  });

  it('names the field, the value and what was expected for bad properties', async () => {
    w = await world(0);
    const sc = w.plugins.get('OS::Heat::SoftwareConfig')!;
    const st = w.plugins.get('OS::Heat::StructuredConfig')!;
    expect(sc.validate!({ group: 'puppet', config: 'x' })).toEqual([
      `property 'group': "puppet": expected one of script, apply-config, os-apply-config, Heat::Ungrouped (no agent hook runs other groups)`,
    ]);
    expect(sc.validate!({ group: 'script', config: '' })).toEqual([`property 'config': group 'script' needs the config as non-empty text`]);
    expect(sc.validate!({ group: 'script', config: 'x', inputs: [{ name: 'bad-name' }, { name: 'ok', type: 'Float' }] })).toEqual([
      `property 'inputs[0].name': "bad-name": expected a name usable as an environment variable`,
      `property 'inputs[1].type': "Float": expected one of String, Number, CommaDelimitedList, Json, Boolean`,
    ]);
    expect(st.validate!({ config: 'text' })).toEqual([`property 'config': "text": expected a mapping`]);
    expect(st.validate!({ config: {}, outputs: [{ name: 'deploy_stdout' }] })).toEqual([
      `property 'outputs[0].name': "deploy_stdout": names starting with deploy_ are Heat's own outputs`,
    ]);
  });

  it('ungrouped: structured data becomes apply-config, a #! script becomes script, anything else is refused', async () => {
    w = await world(0);
    const sc = w.plugins.get('OS::Heat::SoftwareConfig')!;
    const st = w.plugins.get('OS::Heat::StructuredConfig')!;
    expect(st.validate!({ config: { a: 1 } })).toEqual([]);
    expect(sc.validate!({ config: '#!/bin/bash\ntrue\n' })).toEqual([]);
    expect(sc.validate!({ group: 'ungrouped', config: '{"a": 1}' })).toEqual([]);
    expect(sc.validate!({ config: 'echo no shebang' })[0]).toMatch(/^property 'config': "echo no shebang": group 'Heat::Ungrouped' expected a mapping/);
    expect(st.validate!({ group: 'os-apply-config', config: { a: 1 } })).toEqual([]);
  });
});

describe('deployment names and get_input', () => {
  it('derives names that pass the node-document rule, stay stable, and keep sanitised look-alikes apart', () => {
    const a = deploymentName('overcloud/Compute/0', 'Deploy', 'n1');
    expect(a).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/);
    expect(a.startsWith('overcloud_Compute_0.Deploy.n1.')).toBe(true);
    expect(deploymentName('overcloud/Compute/0', 'Deploy', 'n1')).toBe(a);
    expect(deploymentName('overcloud_Compute_0', 'Deploy', 'n1')).not.toBe(a);
    const long = deploymentName('x'.repeat(300), 'Deploy');
    expect(long.length).toBeLessThanOrEqual(128);
    expect(long).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/);
    expect(deploymentName('_odd', 'R')).toMatch(/^[A-Za-z0-9]/);
  });

  it('substitutes get_input deep in structured config; LAX keeps unknown ones, STRICT names them', () => {
    const inputs = new Map<string, unknown>([['port', 8080], ['hosts', ['a', 'b']]]);
    const cfg = { svc: { port: { get_input: 'port' }, hosts: [{ get_input: 'hosts' }], other: { get_input: 'nope' } } };
    expect(substituteInputs(cfg, inputs, { inputKey: 'get_input', strict: false })).toEqual({ svc: { port: 8080, hosts: [['a', 'b']], other: { get_input: 'nope' } } });
    expect(() => substituteInputs(cfg, inputs, { inputKey: 'get_input', strict: true })).toThrow(/config.svc.other: get_input 'nope' names no input/);
    expect(substituteInputs({ a: { my_input: 'port' } }, inputs, { inputKey: 'my_input', strict: true })).toEqual({ a: 8080 });
  });
});

describe('validation before resources exist', () => {
  it('skips values that are not known yet (get_resource / get_attr) and still checks the rest', async () => {
    w = await world(0);
    const unknown = Symbol('unknown until resources exist');
    const sc = w.plugins.get('OS::Heat::SoftwareConfig')!;
    expect(sc.validate!({ group: 'script', config: unknown, inputs: [{ name: unknown }, { name: 'bad-name' }] })).toEqual([
      `property 'inputs[1].name': "bad-name": expected a name usable as an environment variable`,
    ]);
    const sd = w.plugins.get('OS::Heat::SoftwareDeploymentGroup')!;
    expect(sd.validate!({ config: unknown, servers: unknown, input_values: unknown })).toEqual([]);
    expect(sd.validate!({ config: unknown, servers: { a: unknown, b: 7 } })).toEqual([`property 'servers.b': 7: expected a node name or uuid`]);
  });
});
