import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeBundle, type Bundle } from '../../server/orchestration/hot/bundle.js';
import { resolve } from '../../server/orchestration/hot/functions.js';
import { stackContext, validateStack } from '../../server/orchestration/hot/stack.js';
import { FIXTURES } from '../harness/fixtures.js';
import { dedent } from './hot-helpers.js';

/** The resource types the stack engine will implement (issue 12). */
const OSP_TYPES = new Set([
  'OS::Heat::SoftwareConfig', 'OS::Heat::StructuredConfig', 'OS::Heat::SoftwareDeployment', 'OS::Heat::StructuredDeployment',
  'OS::Heat::SoftwareDeploymentGroup', 'OS::Heat::StructuredDeploymentGroup', 'OS::Heat::ResourceGroup', 'OS::Heat::Value',
  'OS::Heat::RandomString', 'OS::Heat::None', 'OS::Heat::WaitCondition', 'OS::Heat::WaitConditionHandle',
]);
const THT = path.join(FIXTURES, 'tht');

/** The THT fixture tree as the operator's bundle, plus files written for the test. */
function thtBundle(extra: Record<string, string> = {}): Bundle {
  const files: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const n of readdirSync(dir)) {
      const p = path.join(dir, n);
      if (statSync(p).isDirectory()) walk(p); else files[path.relative(THT, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(THT);
  for (const [k, v] of Object.entries(extra)) files[k] = dedent(v);
  return makeBundle(files);
}
const lines = (r: { problems: { file: string; line: number; column: number; message: string }[] }): string[] => r.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`);
const noLive = { resourceRef: (n: string) => n, attr: () => undefined };

describe('TripleO heat templates through the HOT layer', () => {
  it('the composable time services validate alone (wallaby and rocky) and their role_data resolves', () => {
    const b = thtBundle();
    for (const t of ['deployment/time/timezone-baremetal-ansible.yaml', 'deployment/timesync/chrony-baremetal-ansible.yaml', 'puppet/services/time/ntp.yaml']) {
      expect(lines(validateStack(b, { template: t }, { knownTypes: OSP_TYPES })), t).toEqual([]);
    }
    const chrony = validateStack(b, { template: 'deployment/timesync/chrony-baremetal-ansible.yaml', parameters: { NtpServer: 'ntp1.example.com, ntp2.example.com', MaxPoll: '12' } }).stack!;
    expect(chrony.conditions).toEqual({ chrony_global_server_settings_set: false, chrony_global_pool_settings_set: false });
    const role = resolve(chrony.outputs.get('role_data')!.value, stackContext(chrony, noLive)) as { ansible_group_vars: Record<string, unknown> };
    expect(role.ansible_group_vars).toMatchObject({
      chrony_ntp_servers: ['ntp1.example.com', 'ntp2.example.com'],
      chrony_global_server_settings: 'iburst minpoll 6 maxpoll 12',
      chrony_manage_package: true,
      chrony_acl_rules: ['deny all'],
    });
    const ntp = validateStack(b, { template: 'puppet/services/time/ntp.yaml' }).stack!;
    expect(ntp.template.version.name).toBe('rocky');
    expect(ntp.parameters.EnablePackageInstall).toBe(false);
  });

  it('a constraint of a TripleO parameter is enforced with Heat\'s message, at the environment\'s position', () => {
    const b = thtBundle({ 'test/bad-poll.yaml': 'parameter_defaults:\n  MaxPoll: 20\n' });
    expect(lines(validateStack(b, { template: 'deployment/timesync/chrony-baremetal-ansible.yaml', environments: ['test/bad-poll.yaml'] })))
      .toEqual(["test/bad-poll.yaml:2:3: Parameter 'MaxPoll' is invalid: 20 is out of range (min: 4, max: 17)"]);
  });

  it('a role stack using the services through resource_registry validates, parameter_defaults reaching the nested services', () => {
    const b = thtBundle({
      'test/role.yaml': `
        heat_template_version: wallaby
        parameters:
          RoleName: {type: string, default: Controller}
        resources:
          Timezone:
            type: OS::TripleO::Services::Timezone
            properties: {RoleName: {get_param: RoleName}}
          Timesync:
            type: OS::TripleO::Services::Timesync
            properties: {RoleName: {get_param: RoleName}}
        outputs:
          services:
            value:
              - {get_attr: [Timezone, role_data, service_name]}
              - {get_attr: [Timesync, role_data, service_name]}`,
      'test/registry.yaml': `
        resource_registry:
          OS::TripleO::Services::Timezone: ../deployment/time/timezone-baremetal-ansible.yaml
          OS::TripleO::Services::Timesync: ../deployment/timesync/chrony-baremetal-ansible.yaml
        parameter_defaults:
          NtpServer: [clock.example.com]
          TimeZone: Europe/Paris`,
    });
    const r = validateStack(b, { template: 'test/role.yaml', environments: ['test/registry.yaml', 'environments/low-memory-usage.yaml', 'environments/sshd-banner.yaml'] }, { knownTypes: OSP_TYPES });
    expect(lines(r)).toEqual([]);
    const s = r.stack!;
    expect(s.createLevels).toEqual([['Timesync', 'Timezone']]);
    expect(s.resources.get('Timesync')!.nested!.stack.parameters.NtpServer).toEqual(['clock.example.com']);
    expect(s.resources.get('Timezone')!.nested!.stack.parameters).toMatchObject({ TimeZone: 'Europe/Paris', RoleName: 'Controller' });
  });

  it('environments/podman.yaml is refused: the template it maps to is not in the bundle', () => {
    const b = thtBundle({ 'test/top.yaml': 'heat_template_version: wallaby\n' });
    expect(lines(validateStack(b, { template: 'test/top.yaml', environments: ['environments/podman.yaml'] }))).toEqual([
      'environments/podman.yaml:4:34: resource_registry: "OS::TripleO::Services::Podman": ../deployment/podman/podman-baremetal-ansible.yaml (deployment/podman/podman-baremetal-ansible.yaml) is not in the template bundle',
    ]);
  });

  it('the 2016 resource registry: refused with the list of what osp lacks (missing templates, types the engine does not have)', () => {
    const b = thtBundle({
      'test/uses-registry.yaml': `
        heat_template_version: 2016-04-08
        resources:
          server: {type: OS::TripleO::Server}
          deployment: {type: OS::TripleO::SoftwareDeployment}
          tasks: {type: OS::TripleO::Tasks::ControllerPreConfig}`,
    });
    const r = validateStack(b, { template: 'test/uses-registry.yaml', environments: ['overcloud-resource-registry-puppet.yaml'] }, { knownTypes: OSP_TYPES });
    const messages = r.problems.map((p) => p.message);
    const missing = messages.filter((m) => m.endsWith('is not in the template bundle'));
    const rest = messages.filter((m) => !m.endsWith('is not in the template bundle'));
    expect(missing.length).toBeGreaterThan(50);
    expect(missing).toContain('resource_registry: "OS::TripleO::Controller": puppet/controller.yaml (puppet/controller.yaml) is not in the template bundle');
    // OS::TripleO::Server is mapped to Nova, which osp replaces with its own bare-metal server type; the deployment maps to a type osp has; the task to OS::Heat::None.
    expect(rest).toEqual(['The Resource Type (OS::Nova::Server) could not be found. (resource_registry maps OS::TripleO::Server to it)']);
    expect(r.stack).toBeUndefined();
  });

  it('TripleO-style yaql and CloudFormation functions are refused with a clear list', () => {
    const b = thtBundle({
      'test/yaql.yaml': `
        heat_template_version: rocky
        parameters:
          ServiceNetMap: {type: json, default: {}}
        outputs:
          role_data:
            value:
              service_names:
                yaql:
                  expression: $.data.keys()
                  data: {get_param: ServiceNetMap}
              old: {"Fn::Select": [0, [a]]}
              facade: {resource_facade: metadata}`,
    });
    expect(lines(validateStack(b, { template: 'test/yaql.yaml' }))).toEqual([
      'test/yaql.yaml:8:9: YAQL expressions are not evaluated by osp',
      'test/yaql.yaml:11:12: CloudFormation function "Fn::Select" is not supported in HOT templates by osp',
      'test/yaql.yaml:12:15: resource_facade is not supported by osp (no provider templates reading their facade)',
    ]);
  });
});
