import { shownValue } from '../../../common/errors.js';
/**
 * OS::Osp::Server's properties: checks (one line per problem, naming the
 * property, the value and what was expected) and the parsed form.
 *
 * Nova's and TripleO's server properties that have no meaning on bare metal
 * driven by ospd (`flavor`, `key_name`, `networks`, …) are accepted and
 * ignored, so TripleO-style templates using OS::Nova::Server load as written.
 */

export const SERVER_TYPE = 'OS::Osp::Server';
export const SERVER_ALIASES = ['OS::Nova::Server', 'OS::TripleO::Server'] as const;

const OWN = ['image', 'name', 'profile', 'capabilities', 'node', 'user_data', 'metadata', 'ssh_keys'];
const IGNORED = ['flavor', 'key_name', 'networks', 'user_data_format', 'software_config_transport', 'scheduler_hints', 'config_drive', 'admin_user', 'image_update_policy'];
/** Plain words only: they go into a JSON path in SQL (server-claims.ts). */
const CAP_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

export interface ServerProps {
  image: string;
  hostname?: string;
  /** What the node's capabilities must hold; `profile` included when given. */
  capabilities: Record<string, string>;
  node?: string;
  userData?: string;
  metadata: Record<string, string>;
  sshKeys: string[];
}


/** TripleO writes capabilities as `profile:compute,boot_option:local`; a mapping is accepted too. */
function capabilityMap(v: unknown, problems: string[]): Record<string, string> {
  let entries: [string, unknown][];
  if (typeof v === 'string') {
    entries = v.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
      const i = s.indexOf(':');
      return i < 0 ? [s, undefined] : [s.slice(0, i).trim(), s.slice(i + 1).trim()];
    });
  } else if (v && typeof v === 'object' && !Array.isArray(v)) {
    entries = Object.entries(v);
  } else {
    problems.push(`property 'capabilities': ${shownValue(v)}: expected a mapping of capability to value, or 'key:value,…'`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (!CAP_KEY.test(k)) problems.push(`property 'capabilities': key ${shownValue(k)}: expected letters, digits, '_', '.', ':' or '-' (at most 64)`);
    else if (typeof val !== 'string' || val === '') problems.push(`property 'capabilities': ${k}: ${shownValue(val)}: expected a non-empty string`);
    else out[k] = val;
  }
  return out;
}

function optionalString(p: Record<string, unknown>, key: string, problems: string[], what: string): string | undefined {
  const v = p[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') {
    problems.push(`property '${key}': ${shownValue(v)}: expected ${what}`);
    return undefined;
  }
  return v;
}

/** Parses and checks; `problems` is empty when the properties are usable. */
export function parseServerProps(p: Record<string, unknown>): { props: ServerProps; problems: string[] } {
  const problems: string[] = [];
  for (const k of Object.keys(p)) {
    if (!OWN.includes(k) && !IGNORED.includes(k)) problems.push(`property '${k}': not a property of ${SERVER_TYPE}: expected one of ${OWN.join(', ')}`);
  }
  const image = optionalString(p, 'image', problems, 'an image name');
  if (image === undefined && !problems.some((x) => x.startsWith("property 'image'"))) problems.push(`property 'image': ${shownValue(p.image ?? '')}: expected an image name (ospctl image list)`);
  const profile = optionalString(p, 'profile', problems, 'a profile name (the node capability profile:NAME that inspection rules set)');
  const capabilities = p.capabilities === undefined || p.capabilities === null ? {} : capabilityMap(p.capabilities, problems);
  if (profile !== undefined) {
    if (capabilities.profile !== undefined && capabilities.profile !== profile) {
      problems.push(`property 'profile': ${shownValue(profile)}: differs from capabilities profile:${capabilities.profile}: expected one profile`);
    }
    capabilities.profile = profile;
  }
  const metadata: Record<string, string> = {};
  if (p.metadata !== undefined && p.metadata !== null) {
    if (typeof p.metadata !== 'object' || Array.isArray(p.metadata)) problems.push(`property 'metadata': ${shownValue(p.metadata)}: expected a mapping`);
    // As Heat does for Nova: values that are not strings travel as JSON text.
    else for (const [k, v] of Object.entries(p.metadata)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  let sshKeys: string[] = [];
  if (p.ssh_keys !== undefined && p.ssh_keys !== null) {
    if (!Array.isArray(p.ssh_keys) || p.ssh_keys.some((k) => typeof k !== 'string')) problems.push(`property 'ssh_keys': ${shownValue(p.ssh_keys)}: expected a list of public keys (strings)`);
    else sshKeys = p.ssh_keys as string[];
  }
  return {
    props: {
      image: image ?? '', hostname: optionalString(p, 'name', problems, 'a host name'), capabilities, node: optionalString(p, 'node', problems, 'a node name or uuid'),
      userData: optionalString(p, 'user_data', problems, 'text'), metadata, sshKeys,
    },
    problems,
  };
}

/** `profile 'compute'`, or the capabilities as the operator wrote them, for messages. */
export function describeMatch(caps: Record<string, string>): string {
  const keys = Object.keys(caps);
  if (keys.length === 0) return 'any node';
  if (keys.length === 1 && caps.profile !== undefined) return `profile '${caps.profile}'`;
  return `capabilities ${keys.sort().map((k) => `${k}:${caps[k]}`).join(',')}`;
}
