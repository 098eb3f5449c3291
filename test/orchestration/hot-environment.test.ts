import { describe, expect, it } from 'vitest';
import { loadEnvironments, mapType } from '../../server/orchestration/hot/environment.js';
import type { HotProblem } from '../../server/orchestration/hot/problems.js';
import { loadNestedStack, validateStack } from '../../server/orchestration/hot/stack.js';
import { bundleOf } from './hot-helpers.js';

const TOP = `
  heat_template_version: wallaby
  parameters:
    Flavor: {type: string, default: small}
    Count: {type: number, default: 1}
    NtpServer: {type: comma_delimited_list, default: pool.ntp.org}
  resources:
    svc:
      type: OS::Osp::Service
      properties:
        Count: {get_param: Count}
  outputs:
    flavor: {value: {get_param: Flavor}}
`;
const NESTED = `
  heat_template_version: wallaby
  parameters:
    Count: {type: number}
    NtpServer: {type: comma_delimited_list, default: nested.default}
    Flavor: {type: string, default: nested-flavor}
  outputs:
    ntp: {value: {get_param: NtpServer}}
`;

describe('environments', () => {
  it('later files win per key; --parameter wins over all; parameter_defaults reach nested templates, parameters do not', () => {
    const b = bundleOf({
      'top.yaml': TOP,
      'svc/service.yaml': NESTED,
      'env/one.yaml': `
        parameters: {Flavor: one}
        parameter_defaults: {NtpServer: "a.ntp, b.ntp", Unused: 1}
        resource_registry:
          OS::Osp::Service: ../svc/service.yaml`,
      'env/two.yaml': `
        parameters: {Flavor: two}
        parameter_defaults: {NtpServer: c.ntp}`,
    });
    const r = validateStack(b, { template: 'top.yaml', environments: ['env/one.yaml', 'env/two.yaml'] });
    expect(r.problems).toEqual([]);
    const s = r.stack!;
    expect(s.parameters.Flavor).toBe('two');
    expect(s.parameters.NtpServer).toEqual(['c.ntp']);
    const nested = s.resources.get('svc')!.nested!;
    expect(nested.path).toBe('svc/service.yaml');
    expect(nested.stack.parameters.NtpServer).toEqual(['c.ntp']);
    // `parameters` are for the top-level template only: the nested Flavor keeps its default.
    expect(nested.stack.parameters.Flavor).toBe('nested-flavor');
    expect(nested.stack.parameters.Count).toBe(1);

    const real = loadNestedStack(s, s.resources.get('svc')!, { Count: 3 });
    expect(real.problems).toEqual([]);
    expect(real.stack!.parameters).toMatchObject({ Count: 3, NtpServer: ['c.ntp'] });
    expect(loadNestedStack(s, s.resources.get('svc')!, { Count: 'many' }).problems.map((p) => p.message)).toEqual(["Parameter 'Count' is invalid: could not convert string to float: 'many'"]);

    const cli = validateStack(b, { template: 'top.yaml', environments: ['env/one.yaml', 'env/two.yaml'], parameters: { Flavor: 'cli' } });
    expect(cli.stack!.parameters.Flavor).toBe('cli');
    const reversed = validateStack(b, { template: 'top.yaml', environments: ['env/two.yaml', 'env/one.yaml'] });
    expect(reversed.stack!.parameters.Flavor).toBe('one');
    expect(reversed.stack!.parameters.NtpServer).toEqual(['a.ntp', 'b.ntp']);
  });

  it('resource_registry: OS::Heat::None, chains, wildcards, per-resource overrides, later files win', () => {
    const problems: HotProblem[] = [];
    const b = bundleOf({
      'environments/a.yaml': `
        resource_registry:
          OS::TripleO::Services::Docker: OS::Heat::None
          OS::TripleO::Services::Podman: ../deployment/podman.yaml
          OS::Alias::Thing: OS::TripleO::Services::Podman
          "OS::Net::*": "OS::Neutron::*"
          resources:
            special:
              OS::TripleO::Services::Podman: OS::Heat::None`,
      'environments/b.yaml': `
        resource_registry:
          OS::TripleO::Services::Docker: ../deployment/docker.yaml`,
      'deployment/podman.yaml': 'heat_template_version: wallaby',
      'deployment/docker.yaml': 'heat_template_version: wallaby',
    });
    const env = loadEnvironments(b, ['environments/a.yaml'], problems);
    expect(problems).toEqual([]);
    expect(mapType(env, 'OS::TripleO::Services::Docker')).toEqual({ kind: 'type', type: 'OS::Heat::None' });
    expect(mapType(env, 'OS::TripleO::Services::Podman')).toEqual({ kind: 'template', path: 'deployment/podman.yaml' });
    expect(mapType(env, 'OS::Alias::Thing')).toEqual({ kind: 'template', path: 'deployment/podman.yaml' });
    expect(mapType(env, 'OS::Net::Port')).toEqual({ kind: 'type', type: 'OS::Neutron::Port' });
    expect(mapType(env, 'OS::TripleO::Services::Podman', 'special')).toEqual({ kind: 'type', type: 'OS::Heat::None' });
    const both = loadEnvironments(b, ['environments/a.yaml', 'environments/b.yaml'], problems);
    expect(mapType(both, 'OS::TripleO::Services::Docker')).toEqual({ kind: 'template', path: 'deployment/docker.yaml' });
  });

  it('event_sinks is ignored with a note; merge strategies, unknown sections and missing files are problems', () => {
    const problems: HotProblem[] = [];
    const b = bundleOf({
      'e.yaml': `
        event_sinks: [{type: zaqar-queue, target: q}]
        parameter_merge_strategies: {ServiceNetMap: merge}
        paramters: {A: 1}
        resource_registry:
          OS::A: missing.yaml`,
    });
    const env = loadEnvironments(b, ['e.yaml', 'nope.yaml'], problems);
    expect(env.notes).toEqual(['e.yaml: event_sinks ignored: osp publishes stack events on MQTT (osp/stacks/<stack>/events)']);
    expect(problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`)).toEqual([
      'e.yaml:2:1: parameter_merge_strategies is not supported: in osp a later environment file replaces a parameter value',
      'e.yaml:3:1: environment has wrong section "paramters" (expected parameters, parameter_defaults, resource_registry, encrypted_param_names, event_sinks, parameter_merge_strategies)',
      'e.yaml:5:10: resource_registry: "OS::A": missing.yaml (missing.yaml) is not in the template bundle',
      'nope.yaml:1:1: environment file not in the template bundle',
    ]);
  });
});
