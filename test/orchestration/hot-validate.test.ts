import { describe, expect, it } from 'vitest';
import { templateInvalid } from '../../server/orchestration/hot/problems.js';
import { stackContext, validateStack } from '../../server/orchestration/hot/stack.js';
import { resolve } from '../../server/orchestration/hot/functions.js';
import { bundleOf } from './hot-helpers.js';

const KNOWN = new Set(['OS::Heat::Value', 'OS::Heat::SoftwareConfig', 'OS::Heat::SoftwareDeployment', 'OS::Heat::RandomString']);
const ATTRS: Record<string, string[]> = { 'OS::Heat::Value': ['value'], 'OS::Heat::SoftwareConfig': ['config'], 'OS::Heat::RandomString': ['value'] };
const opts = { knownTypes: KNOWN, attributesOf: (t: string) => ATTRS[t] };
const lines = (r: { problems: { file: string; line: number; column: number; message: string }[] }): string[] => r.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`);

describe('validateStack reports every problem at once, with file:line:column', () => {
  it('unknown type, unknown and missing parameters, constraint, unknown resource and attribute, unknown function, nested problems', () => {
    const b = bundleOf({
      'top.yaml': `
        heat_template_version: wallaby
        parameters:
          Size: {type: number, constraints: [{range: {min: 1, max: 10}}]}
          Needed: {type: string}
        resources:
          a: {type: OS::Nova::Server}
          b:
            type: OS::Heat::Value
            properties:
              value: {get_attr: [c, colour]}
          c:
            type: OS::Heat::Value
            properties:
              value: {get_resource: ghost}
              other: {get_param: Nope}
              typo: {str_repalce: {template: x, params: {}}}
          n:
            type: nested.yaml
            properties: {Wrong: 1}
        outputs:
          o: {value: {get_attr: [b, value]}}`,
      'nested.yaml': `
        heat_template_version: wallaby
        parameters:
          Req: {type: string}
        resources:
          x: {type: OS::Missing::Type}`,
      'env.yaml': 'parameters:\n  Size: 50\n  Extra: 1\n',
    });
    const r = validateStack(b, { template: 'top.yaml', environments: ['env.yaml'] }, opts);
    expect(r.stack).toBeUndefined();
    expect(lines(r)).toEqual([
      'env.yaml:2:3: Parameter \'Size\' is invalid: 50 is out of range (min: 1, max: 10)',
      'env.yaml:3:3: The Parameter (Extra) was not defined in template.',
      'top.yaml:4:3: The Parameter (Needed) was not provided.',
      'top.yaml:6:13: The Resource Type (OS::Nova::Server) could not be found.',
      'top.yaml:10:14: The Referenced Attribute (c colour) is incorrect. (OS::Heat::Value has value)',
      'top.yaml:14:14: The specified reference "ghost" (in resources.c) is incorrect.',
      'top.yaml:15:14: get_param: the template has no parameter "Nope"',
      'top.yaml:16:13: unknown intrinsic function "str_repalce"',
      'top.yaml:17:3: resource "n": Unknown Property Wrong (template nested.yaml has no parameter "Wrong")',
      'nested.yaml:3:3: The Parameter (Req) was not provided.',
      'nested.yaml:5:13: The Resource Type (OS::Missing::Type) could not be found.',
    ]);
  });

  it('YAML syntax errors and a bad version are problems with positions; nothing else is half-read', () => {
    const b = bundleOf({ 'a.yaml': 'heat_template_version: wallaby\nresources: [\n', 'v.yaml': 'heat_template_version: 2019-01-01\n' });
    const a = validateStack(b, { template: 'a.yaml' });
    expect(a.problems[0].file).toBe('a.yaml');
    expect(a.problems[0].message).toMatch(/^YAML: /);
    expect(lines(validateStack(b, { template: 'v.yaml' }))[0]).toMatch(/^v.yaml:1:24: heat_template_version "2019-01-01": expected one of 2013-05-23, .*rocky, 2021-04-16, wallaby$/);
  });

  it('conditions: evaluated from parameters, resources and outputs excluded when false', () => {
    const b = bundleOf({
      't.yaml': `
        heat_template_version: wallaby
        parameters:
          Env: {type: string, default: test}
          Debug: {type: boolean, default: "yes"}
        conditions:
          prod: {equals: [{get_param: Env}, prod]}
          not_prod: {not: prod}
          both: {and: [not_prod, {get_param: Debug}]}
        resources:
          big: {type: OS::Heat::Value, condition: prod, properties: {value: 1}}
          small: {type: OS::Heat::Value, condition: both, properties: {value: {if: [prod, 10, 2]}}}
        outputs:
          big_value: {value: {get_attr: [big, value]}, condition: prod}
          small_value: {value: {get_attr: [small, value]}}`,
    });
    const test = validateStack(b, { template: 't.yaml' }, opts).stack!;
    expect(test.conditions).toEqual({ prod: false, not_prod: true, both: true });
    expect([...test.resources.keys()]).toEqual(['small']);
    expect([...test.outputs.keys()]).toEqual(['small_value']);
    const ctx = stackContext(test, { resourceRef: (n) => n, attr: () => 'x' });
    expect(resolve(test.resources.get('small')!.def.properties, ctx)).toEqual({ value: 2 });
    const prod = validateStack(b, { template: 't.yaml', parameters: { Env: 'prod' } }, opts).stack!;
    expect([...prod.resources.keys()]).toEqual(['big']);
    expect(prod.conditions.both).toBe(false);
  });

  it('hidden parameters are named on the loaded stack; the refusal is one OspError carrying every problem', () => {
    const b = bundleOf({ 't.yaml': 'heat_template_version: rocky\nparameters:\n  Pw: {type: string, hidden: true, default: s3cret}\n' });
    expect(validateStack(b, { template: 't.yaml' }).stack!.hiddenParameters).toEqual(['Pw']);
    const e = templateInvalid([{ file: 'a.yaml', line: 2, column: 3, message: 'one' }, { file: 'b.yaml', line: 4, column: 5, message: 'two' }]);
    expect(e.code).toBe('TEMPLATE_INVALID');
    expect(e.message).toBe('a.yaml:2:3: one\nb.yaml:4:5: two');
    expect(e.details.problems).toEqual([{ field: 'a.yaml:2:3', description: 'a.yaml:2:3: one' }, { field: 'b.yaml:4:5', description: 'b.yaml:4:5: two' }]);
  });

  it('a nested template that includes itself is refused', () => {
    const b = bundleOf({ 'loop.yaml': 'heat_template_version: wallaby\nresources:\n  me: {type: loop.yaml}\n' });
    expect(lines(validateStack(b, { template: 'loop.yaml' }))).toEqual(['loop.yaml:3:14: resource "me": nested template loop.yaml includes itself (loop.yaml -> loop.yaml)']);
  });
});
