import type { StackResource } from '../../proto/gen/osp/v1/stack.js';

/** One overcloud server as `node delete` matches it. */
export interface OvercloudServer {
  role: string;
  /** The ResourceGroup member name (its index), what removal_policies list. */
  member: string;
  nodeUuid: string;
  hostname: string;
  nodeName: string;
}

const parse = (text: string | undefined): unknown => (text ? JSON.parse(text) : undefined);

/** A member resource of `<stack>/<Role>Servers` (nested depth 1) with its attributes, or undefined. */
export function toServer(r: StackResource): OvercloudServer | undefined {
  const m = /\/([A-Z][A-Za-z0-9]*)Servers$/.exec(r.stackPath);
  if (!m || !/^\d+$/.test(r.name)) return undefined;
  return {
    role: m[1],
    member: r.name,
    nodeUuid: String(parse(r.attributesJson.node_uuid) ?? r.physicalId),
    hostname: String(parse(r.attributesJson.name) ?? ''),
    nodeName: String(parse(r.attributesJson.node_name) ?? ''),
  };
}

/**
 * The removal each role needs so that exactly the named nodes go (by host
 * name, node name or node uuid); names matching nothing are returned apart,
 * so the caller refuses before changing anything.
 */
export function removalsFor(servers: OvercloudServer[], wanted: string[]): { byRole: Map<string, string[]>; unknown: string[] } {
  const byRole = new Map<string, string[]>();
  const unknown: string[] = [];
  for (const w of wanted) {
    const s = servers.find((x) => x.hostname === w || x.nodeName === w || x.nodeUuid === w);
    if (!s) {
      unknown.push(w);
      continue;
    }
    const list = byRole.get(s.role) ?? [];
    if (!list.includes(s.member)) list.push(s.member);
    byRole.set(s.role, list);
  }
  return { byRole, unknown };
}

/** "ComputeComputeRegistrationStep3" → step 3, service ComputeRegistration of role Compute (as render.ts names them). */
export function stepOfResource(resource: string, roles: string[]): { role: string; service: string; step: number } | undefined {
  const m = /^(.+)Step(\d)$/.exec(resource);
  if (!m) return undefined;
  const role = roles.find((r) => m[1].startsWith(r));
  return role ? { role, service: m[1].slice(role.length), step: Number(m[2]) } : undefined;
}
