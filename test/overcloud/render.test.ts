import { mkdtempSync, writeFileSync, cpSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { isOspError } from '../../common/errors.js';
import { overcloudBundle, DEFAULT_TEMPLATES_DIR } from '../../cli/overcloud/bundle.js';
import { makeBundle } from '../../server/orchestration/hot/bundle.js';
import { validateStack } from '../../server/orchestration/hot/stack.js';
import { PluginRegistry } from '../../server/orchestration/engine/registry.js';
import { valueResource } from '../../server/orchestration/resources/value.js';
import { noneResource } from '../../server/orchestration/resources/none.js';
import { randomStringResource } from '../../server/orchestration/resources/random-string.js';
import { resourceGroupResource } from '../../server/orchestration/resources/resource-group.js';
import { softwarePlugins } from '../../server/orchestration/resources/software-deployment.js';
import { serverPlugins } from '../../server/orchestration/resources/server.js';

/** The types the engine registers in ospd, from the real plug-ins (their deps are never called by validation). */
function engineRegistry(): PluginRegistry {
  const stub = {} as never;
  return new PluginRegistry([
    valueResource, noneResource, randomStringResource, resourceGroupResource,
    ...softwarePlugins({ configs: { onAck: () => undefined }, db: stub, log: stub } as never),
    ...serverPlugins({ db: stub, registry: stub, deploy: { bootWatch: { onEnded: () => undefined } }, states: { observe: () => undefined }, abort: stub, leases: stub, log: stub } as never),
  ]);
}

async function validate(src: Parameters<typeof overcloudBundle>[0], parameters: Record<string, string> = {}) {
  const b = await overcloudBundle(src);
  const reg = engineRegistry();
  const r = validateStack(makeBundle(b.files), { template: b.template, environments: b.environments, parameters }, { knownTypes: reg.knownTypes(), attributesOf: reg.attributesOf, stackName: 'overcloud' });
  return { b, r, lines: r.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`) };
}

/** A copy of deploy/ that a test may change. */
function copyOfDeploy(): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'overcloud-')), 'deploy');
  cpSync(DEFAULT_TEMPLATES_DIR, dir, { recursive: true });
  return dir;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(isOspError(e), String(e)).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('overcloud rendering from roles_data', () => {
  it('the whole deploy/ tree validates with the engine\'s types, with and without every environment', async () => {
    const plain = await validate({});
    expect(plain.lines).toEqual([]);
    const envs = ['scale.yaml', 'image.yaml', 'time-and-sysctl.yaml'].map((e) => path.join(DEFAULT_TEMPLATES_DIR, 'environments', e));
    const all = await validate({ environments: envs });
    expect(all.lines).toEqual([]);
    const s = all.r.stack!;
    expect(s.parameters.ComputeCount).toBe(2);
    expect(s.parameters.ControllerImage).toBe('overcloud-custom');
    expect(s.resources.get('ControllerServers')?.type).toBe('OS::Heat::ResourceGroup');
    expect(s.resources.get('ComputeTimesync')?.nested).toBeDefined();
    expect(plain.b.files['services/hosts.yaml']).toBeDefined();
    expect(plain.b.files['scripts/registry-check.sh']).toBeDefined();
  });

  it('orders steps across roles: each step-N deployment of every role waits on the step N-1 barrier, which waits on all of them', async () => {
    const { r } = await validate({});
    const res = r.stack!.resources;
    const deps = (n: string) => [...res.get(n)!.dependsOn];
    expect(deps('ComputeComputeRegistrationStep3')).toContain('OvercloudStep2');
    expect(deps('OvercloudStep2')).toEqual(['ControllerRegistryStep2']);
    expect(deps('OvercloudStep1')).toEqual(expect.arrayContaining(['ControllerHostsStep1', 'ComputeHostsStep1', 'ControllerSysctlStep1', 'ComputeTimesyncStep1']));
    expect(deps('ControllerRegistryStep5')).toEqual(expect.arrayContaining(['OvercloudStep4', 'ComputeComputeRegistrationStep3']));
    expect(deps('OvercloudStep0')).toEqual(['ControllerConfigSettingsDeployment', 'ComputeConfigSettingsDeployment']);
    const levels = r.stack!.createLevels.map((l) => [...l]);
    const level = (n: string) => levels.findIndex((l) => l.includes(n));
    expect(level('ControllerRegistryStep2')).toBeLessThan(level('ComputeComputeRegistrationStep3'));
    expect(level('ComputeHostsStep1')).toBeLessThan(level('ControllerRegistryStep2'));
    expect([...r.stack!.outputs.keys()]).toEqual(expect.arrayContaining(['controller_endpoint', 'controller_registered_computes', 'overcloud_hosts']));
  });

  it('hostnames, counts and removal policies come from per-role parameters', async () => {
    const { b } = await validate({});
    const t = YAML.parse(b.templateText);
    expect(t.parameters.ComputeHostnameFormat.default).toBe('%stackname%-novacompute-%index%');
    expect(t.parameters.ControllerCount.default).toBe(1);
    expect(t.resources.ComputeServers.properties.removal_policies).toEqual({ get_param: 'ComputeRemovalPolicies' });
    expect(t.resources.ComputeServers.properties.resource_def.type).toBe('OS::TripleO::Server');
  });

  it('refuses a role naming a service that has no template, before anything is sent', async () => {
    const dir = copyOfDeploy();
    const roles = YAML.parse(readFileSync(path.join(dir, 'roles_data.yaml'), 'utf8'));
    roles[1].ServicesDefault.push('OS::TripleO::Services::NovaCompute');
    writeFileSync(path.join(dir, 'roles_data.yaml'), YAML.stringify(roles));
    const msg = await refusal(overcloudBundle({ templatesDir: dir }));
    expect(msg).toContain('role Compute: service OS::TripleO::Services::NovaCompute does not exist');
  });

  it('refuses an environment setting parameters of a role that is not in the roles file', async () => {
    const env = path.join(copyOfDeploy(), 'environments', 'storage.yaml');
    writeFileSync(env, 'parameter_defaults:\n  CephStorageCount: 3\n  ComputeCount: 1\n');
    const msg = await refusal(overcloudBundle({ environments: [env] }));
    expect(msg).toContain('CephStorageCount');
    expect(msg).toContain('the roles are Controller, Compute');
  });

  it('refuses a step input nobody provides and a roles file with a bad field, naming them', async () => {
    const dir = copyOfDeploy();
    const svc = path.join(dir, 'services', 'hosts.yaml');
    writeFileSync(svc, readFileSync(svc, 'utf8').replace('[all_hosts]', '[storage_node_ips]'));
    expect(await refusal(overcloudBundle({ templatesDir: dir }))).toContain('unknown input storage_node_ips');
    const roles = path.join(dir, 'bad-roles.yaml');
    writeFileSync(roles, '- name: Controller\n  CountDefault: -1\n');
    expect(await refusal(overcloudBundle({ templatesDir: dir, rolesFile: roles }))).toContain('role Controller: CountDefault -1: expected a whole number');
  });

  it('a service mapped to OS::Heat::None is left out of its roles', async () => {
    const env = path.join(copyOfDeploy(), 'no-sysctl.yaml');
    writeFileSync(env, 'resource_registry:\n  OS::TripleO::Services::Sysctl: OS::Heat::None\n');
    const { r, lines } = await validate({ environments: [env] });
    expect(lines).toEqual([]);
    expect(r.stack!.resources.has('ControllerSysctlStep1')).toBe(false);
    expect(r.stack!.resources.has('ControllerTimesyncStep1')).toBe(true);
  });
  it('service parameters are declared at the top and passed down, so a changed parameter_default reaches a deployed overcloud; one name with two types is refused', async () => {
    const { b } = await validate({});
    const t = YAML.parse(b.templateText);
    expect(t.parameters.NtpServers).toMatchObject({ type: 'comma_delimited_list', default: ['pool.ntp.org'] });
    expect(t.resources.ComputeTimesync.properties).toEqual({ RoleName: 'Compute', NtpServers: { get_param: 'NtpServers' }, NtpMaxPoll: { get_param: 'NtpMaxPoll' } });
    expect(t.resources.ControllerSysctl.properties.SysctlSettings).toEqual({ get_param: 'SysctlSettings' });
    const dir = copyOfDeploy();
    const svc = path.join(dir, 'services', 'sysctl.yaml');
    writeFileSync(svc, readFileSync(svc, 'utf8').replace('  SysctlSettings:\n', '  NtpServers:\n    type: string\n    default: x\n  SysctlSettings:\n'));
    expect(await refusal(overcloudBundle({ templatesDir: dir }))).toContain('parameter NtpServers: type "string", but another service or the overcloud declares it as "comma_delimited_list"');
  });
});
