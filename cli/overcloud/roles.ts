import YAML from 'yaml';
import { OspError } from '../../common/errors.js';

/** One role of roles_data.yaml, in TripleO's field names. */
export interface Role {
  name: string;
  description: string;
  countDefault: number;
  hostnameFormatDefault: string;
  tags: string[];
  services: string[];
}

const ROLE_NAME = /^[A-Z][A-Za-z0-9]*$/;
const KNOWN_FIELDS = new Set(['name', 'description', 'CountDefault', 'HostnameFormatDefault', 'tags', 'ServicesDefault',
  // TripleO fields osp reads no meaning from yet; accepted so TripleO roles files load.
  'networks', 'deprecated_nic_config_name', 'update_serial', 'uses_deprecated_params', 'deprecated_param_image',
  'deprecated_param_flavor', 'deprecated_server_resource_name', 'disable_constraints', 'disable_upgrade_deployment', 'rhel_reg']);

const invalid = (file: string, message: string): OspError => new OspError('TEMPLATE_INVALID', `${file}: ${message}`);

/** Parses a roles file; every problem names the role, the field, the value and what was expected. */
export function parseRoles(file: string, text: string): Role[] {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw invalid(file, `not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!Array.isArray(doc) || doc.length === 0) throw invalid(file, 'expected a non-empty list of roles (each with name and ServicesDefault)');
  const seen = new Set<string>();
  return doc.map((r, n) => {
    const at = `role ${n + 1}`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw invalid(file, `${at}: expected a mapping`);
    const o = r as Record<string, unknown>;
    if (typeof o.name !== 'string' || !ROLE_NAME.test(o.name)) throw invalid(file, `${at}: name ${JSON.stringify(o.name)}: expected a CamelCase role name such as Controller`);
    const where = `role ${o.name}`;
    if (seen.has(o.name)) throw invalid(file, `${where}: the name is used twice`);
    seen.add(o.name);
    for (const k of Object.keys(o)) if (!KNOWN_FIELDS.has(k)) throw invalid(file, `${where}: unknown field ${k} (expected ${[...KNOWN_FIELDS].slice(0, 6).join(', ')})`);
    const count = o.CountDefault ?? 0;
    if (!Number.isInteger(count) || (count as number) < 0) throw invalid(file, `${where}: CountDefault ${JSON.stringify(count)}: expected a whole number ≥ 0`);
    const format = o.HostnameFormatDefault ?? `%stackname%-${o.name.toLowerCase()}-%index%`;
    if (typeof format !== 'string' || !format.includes('%index%')) throw invalid(file, `${where}: HostnameFormatDefault ${JSON.stringify(format)}: expected text with %index%`);
    const services = o.ServicesDefault ?? [];
    if (!Array.isArray(services) || services.some((s) => typeof s !== 'string' || s === '')) {
      throw invalid(file, `${where}: ServicesDefault ${JSON.stringify(services)}: expected a list of service types (OS::TripleO::Services::Name)`);
    }
    const tags = o.tags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw invalid(file, `${where}: tags ${JSON.stringify(tags)}: expected a list of strings`);
    return {
      name: o.name,
      description: typeof o.description === 'string' ? o.description.trim() : '',
      countDefault: count as number,
      hostnameFormatDefault: format,
      tags: tags as string[],
      services: services as string[],
    };
  });
}

/** The per-role parameters the overcloud template declares. */
export const ROLE_PARAMETER_SUFFIXES = ['Count', 'HostnameFormat', 'RemovalPolicies', 'Image', 'Profile'] as const;

/**
 * Environment parameters that look like another role's (`StorageCount` when
 * no role is named Storage): a typo or a missing -r, refused before anything
 * is sent rather than silently ignored.
 */
export function unknownRoleParameters(roles: Role[], parameterNames: Iterable<string>): string[] {
  const names = new Set(roles.map((r) => r.name));
  const re = new RegExp(`^([A-Z][A-Za-z0-9]*?)(${ROLE_PARAMETER_SUFFIXES.join('|')})$`);
  const out: string[] = [];
  for (const p of parameterNames) {
    const m = re.exec(p);
    if (m && !names.has(m[1])) out.push(p);
  }
  return out;
}
