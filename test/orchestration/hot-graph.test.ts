import { describe, expect, it } from 'vitest';
import { creationLevels, deletionLevels, findCycle, formatCycle } from '../../server/orchestration/hot/graph.js';
import { validateStack } from '../../server/orchestration/hot/stack.js';
import { bundleOf } from './hot-helpers.js';

const deps = (o: Record<string, string[]>): Map<string, Set<string>> => new Map(Object.entries(o).map(([k, v]) => [k, new Set(v)]));

describe('dependency graph', () => {
  it('creation in levels of what can run in parallel; deletion in reverse dependency order', () => {
    const d = deps({ net: [], subnet: ['net'], port: ['subnet', 'net'], server: ['port'], config: [], deploy: ['server', 'config'], lonely: [] });
    expect(creationLevels(d)).toEqual([['config', 'lonely', 'net'], ['subnet'], ['port'], ['server'], ['deploy']]);
    expect(deletionLevels(d)).toEqual([['deploy', 'lonely'], ['config', 'server'], ['port'], ['subnet'], ['net']]);
    expect(findCycle(d)).toBeUndefined();
  });

  it('a cycle is named a -> b -> a', () => {
    expect(formatCycle(findCycle(deps({ a: ['b'], b: ['a'], c: [] }))!)).toBe('a -> b -> a');
    expect(formatCycle(findCycle(deps({ x: ['y'], y: ['z'], z: ['y'] }))!)).toBe('y -> z -> y');
    expect(formatCycle(findCycle(deps({ s: ['s'] }))!)).toBe('s -> s');
  });

  it('edges come from get_resource, get_attr and depends_on; a template cycle is a problem with its position', () => {
    const b = bundleOf({
      't.yaml': `
        heat_template_version: wallaby
        resources:
          config: {type: OS::Heat::SoftwareConfig}
          value: {type: OS::Heat::Value, properties: {value: {get_attr: [config, config]}}}
          deploy:
            type: OS::Heat::SoftwareDeployment
            depends_on: value
            properties: {config: {get_resource: config}}`,
      'c.yaml': `
        heat_template_version: wallaby
        resources:
          a: {type: OS::Heat::Value, properties: {value: {get_attr: [b, value]}}}
          b: {type: OS::Heat::Value, depends_on: [a]}`,
    });
    const s = validateStack(b, { template: 't.yaml' }).stack!;
    expect(s.createLevels).toEqual([['config'], ['value'], ['deploy']]);
    expect(s.deleteLevels).toEqual([['deploy'], ['value'], ['config']]);
    const c = validateStack(b, { template: 'c.yaml' });
    expect(c.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`)).toEqual(['c.yaml:3:3: Circular Dependency Found: a -> b -> a']);
    expect(c.stack).toBeUndefined();
  });
});
