import { OspError } from '../../common/errors.js';
import type { Role } from './roles.js';
import { STEPS, type ServiceShape } from './services.js';

/**
 * The overcloud's top-level HOT template, generated from the roles and the
 * shapes of their services (deploy/README.md says why in code and not Jinja).
 *
 * Per role: a ResourceGroup of servers, one stack resource per service, the
 * merged config_settings as an apply-config deployment, then per step and
 * service a script deployment group. A barrier resource per step
 * (OvercloudStepN) depends on every role's step-N deployments and every
 * step-N+1 deployment depends on it: no node starts step N+1 before every
 * node of every role has finished step N.
 *
 * Every parameter a service template declares (but RoleName) is declared
 * again at the top and passed down as a property: the engine updates a
 * nested stack only when its properties change, so a value reaching the
 * service through parameter_defaults alone would never reach a deployed
 * overcloud (NtpServers changed in an -e file would re-run nothing).
 */

/** A service the resource_registry maps to OS::Heat::None: switched off. */
export const SERVICE_OFF = 'off';

export type ServiceLookup = (type: string) => ServiceShape | typeof SERVICE_OFF | undefined;

type Hot = Record<string, unknown>;

const serverGroup = (role: Role) => `${role.name}Servers`;
const serviceResource = (role: Role, s: ServiceShape) => `${role.name}${s.type.split('::').pop()}`;
const stepDeployment = (role: Role, s: ServiceShape, step: number) => `${serviceResource(role, s)}Step${step}`;
const barrier = (step: number) => `OvercloudStep${step}`;
const prefix = (role: Role) => role.name.toLowerCase();

function roleParameters(role: Role): Hot {
  return {
    [`${role.name}Count`]: { type: 'number', default: role.countDefault, description: `Number of ${role.name} nodes.`, constraints: [{ range: { min: 0 } }] },
    [`${role.name}HostnameFormat`]: { type: 'string', default: role.hostnameFormatDefault, description: '%stackname% and %index% are replaced.' },
    [`${role.name}RemovalPolicies`]: { type: 'json', default: [], description: 'ResourceGroup removal_policies: [{resource_list: [member names]}].' },
    [`${role.name}Image`]: { type: 'string', default: 'overcloud-full', description: `Image deployed on ${role.name} nodes (ospctl image list).` },
    [`${role.name}Profile`]: { type: 'string', default: role.name.toLowerCase(), description: 'The node capability profile:NAME the nodes must have.' },
  };
}

function servers(role: Role): Hot {
  return {
    type: 'OS::Heat::ResourceGroup',
    properties: {
      count: { get_param: `${role.name}Count` },
      removal_policies: { get_param: `${role.name}RemovalPolicies` },
      resource_def: {
        type: 'OS::TripleO::Server',
        properties: {
          image: { get_param: `${role.name}Image` },
          profile: { get_param: `${role.name}Profile` },
          // %index% is left for the group, which replaces it per member.
          name: { str_replace: { template: { get_param: `${role.name}HostnameFormat` }, params: { '%stackname%': { get_param: 'OS::stack_name' } } } },
        },
      },
    },
  };
}

/** The names a service may list in step_inputs, with the value the stack gives each. */
function vocabulary(roles: Role[], shapes: Map<Role, ServiceShape[]>): Map<string, { value: unknown; step: number }> {
  const v = new Map<string, { value: unknown; step: number }>();
  const hostLines = roles.map((r) => ({
    repeat: {
      template: '<%addr%> <%name%> # <%id%>',
      for_each: {
        '<%addr%>': { get_attr: [serverGroup(r), 'first_address'] },
        '<%name%>': { get_attr: [serverGroup(r), 'name'] },
        '<%id%>': { get_attr: [serverGroup(r), 'refs'] },
      },
      permutations: false,
    },
  }));
  v.set('all_hosts', { value: { list_join: ['\n', roles.length === 1 ? hostLines[0] : { list_concat: hostLines }] }, step: 0 });
  for (const r of roles) {
    v.set(`${prefix(r)}_node_names`, { value: { list_join: [' ', { get_attr: [serverGroup(r), 'name'] }] }, step: 0 });
    v.set(`${prefix(r)}_node_ips`, { value: { list_join: [' ', { get_attr: [serverGroup(r), 'first_address'] }] }, step: 0 });
    v.set(`${prefix(r)}_node_ids`, { value: { list_join: [' ', { get_attr: [serverGroup(r), 'refs'] }] }, step: 0 });
    for (const s of shapes.get(r)!) {
      for (const [name, step] of s.stepOutputs) {
        const key = `${prefix(r)}_${name}`;
        if (v.has(key)) throw new OspError('TEMPLATE_INVALID', `role ${r.name}: two services export ${name} (${s.type} and another)`);
        v.set(key, { value: { get_attr: [stepDeployment(r, s, step), name] }, step });
      }
    }
  }
  return v;
}

function resolveShapes(roles: Role[], lookup: ServiceLookup): Map<Role, ServiceShape[]> {
  const out = new Map<Role, ServiceShape[]>();
  for (const r of roles) {
    const list: ServiceShape[] = [];
    for (const type of r.services) {
      const s = lookup(type);
      if (s === undefined) {
        throw new OspError('TEMPLATE_INVALID', `role ${r.name}: service ${type} does not exist: no template for it in the resource_registry (deploy/overcloud-resource-registry.yaml or an -e file)`, { role: r.name, service: type });
      }
      if (s !== SERVICE_OFF) list.push(s);
    }
    out.set(r, list);
  }
  return out;
}

/** The top-level overcloud template as a plain HOT document. */
export function renderOvercloud(roles: Role[], lookup: ServiceLookup): Hot {
  const shapes = resolveShapes(roles, lookup);
  const vocab = vocabulary(roles, shapes);
  const parameters: Hot = {};
  const resources: Hot = {};
  const outputs: Hot = {};
  const stepMembers = new Map<number, string[]>(STEPS.map((n) => [n, []]));
  const settingsDeployments: string[] = [];

  for (const r of roles) {
    Object.assign(parameters, roleParameters(r));
    resources[serverGroup(r)] = servers(r);
    const list = shapes.get(r)!;
    for (const s of list) {
      const properties: Hot = s.parameters.has('RoleName') ? { RoleName: r.name } : {};
      for (const [name, decl] of s.parameterDecls) {
        if (name === 'RoleName') continue;
        const seen = parameters[name] as Hot | undefined;
        if (seen && seen.type !== decl.type) {
          throw new OspError('TEMPLATE_INVALID', `${s.template}: parameter ${name}: type ${JSON.stringify(decl.type)}, but another service or the overcloud declares it as ${JSON.stringify(seen.type)}; expected one type per parameter name`, { parameter: name });
        }
        parameters[name] ??= decl;
        properties[name] = { get_param: name };
      }
      resources[serviceResource(r, s)] = { type: s.type, ...(Object.keys(properties).length ? { properties } : {}) };
    }
    const withSettings = list.filter((s) => s.hasConfigSettings).map((s) => ({ get_attr: [serviceResource(r, s), 'role_data', 'config_settings'] }));
    resources[`${r.name}ConfigSettings`] = { type: 'OS::Heat::StructuredConfig', properties: { group: 'apply-config', config: { map_merge: withSettings } } };
    resources[`${r.name}ConfigSettingsDeployment`] = {
      type: 'OS::Heat::StructuredDeploymentGroup',
      properties: { name: `${r.name}ConfigSettings`, config: { get_resource: `${r.name}ConfigSettings` }, servers: { get_attr: [serverGroup(r), 'refs_map'] } },
    };
    settingsDeployments.push(`${r.name}ConfigSettingsDeployment`);

    for (const s of list) {
      for (const step of s.steps) {
        const inputs: unknown[] = [{ step }];
        for (const name of s.stepInputs.get(step) ?? []) {
          const known = vocab.get(name);
          if (!known) {
            throw new OspError('TEMPLATE_INVALID', `${s.template}: role_data.step_inputs.${step}: unknown input ${name} (role ${r.name}); expected all_hosts, <role>_node_names, <role>_node_ips, <role>_node_ids or <role>_<step output> of a role`, { role: r.name, service: s.type, input: name });
          }
          if (known.step >= step) throw new OspError('TEMPLATE_INVALID', `${s.template}: role_data.step_inputs.${step}: ${name} is written at step ${known.step}; a step can only read outputs of earlier steps`);
          inputs.push({ [name]: known.value });
        }
        if (s.hasStepInputValues) inputs.push({ get_attr: [serviceResource(r, s), 'role_data', 'step_input_values'] });
        const name = stepDeployment(r, s, step);
        resources[`${name}Config`] = { type: 'OS::Heat::SoftwareConfig', properties: { group: 'script', config: { get_attr: [serviceResource(r, s), 'role_data', 'step_config', String(step)] } } };
        resources[name] = {
          type: 'OS::Heat::SoftwareDeploymentGroup',
          depends_on: [barrier(step - 1)],
          properties: {
            name: `${r.name} step ${step} ${s.serviceName}`,
            config: { get_resource: `${name}Config` },
            servers: { get_attr: [serverGroup(r), 'refs_map'] },
            input_values: { map_merge: inputs },
          },
        };
        stepMembers.get(step)!.push(name);
      }
      for (const [out] of s.stepOutputs) {
        outputs[`${prefix(r)}_${out}`] = { description: `${s.serviceName} on ${r.name}: per node (group member) the value its step wrote.`, value: vocab.get(`${prefix(r)}_${out}`)!.value };
      }
    }
  }
  resources[barrier(0)] = { type: 'OS::Heat::None', depends_on: settingsDeployments };
  for (const step of STEPS) {
    const members = stepMembers.get(step)!;
    resources[barrier(step)] = { type: 'OS::Heat::None', depends_on: members.length ? members : [barrier(step - 1)] };
  }
  outputs.overcloud_hosts = { description: 'Every overcloud node: address, host name, node uuid.', value: vocab.get('all_hosts')!.value };
  for (const r of roles) {
    outputs[`${prefix(r)}_nodes`] = { description: `${r.name} host names, in member order.`, value: { get_attr: [serverGroup(r), 'name'] } };
  }
  return {
    heat_template_version: 'wallaby',
    description: `The overcloud: roles ${roles.map((r) => r.name).join(', ')} (generated by ospctl overcloud from the roles file).`,
    parameters,
    resources,
    outputs,
  };
}
