import { NodeServiceClient } from '../../proto/gen/osp/v1/node.js';
import type { StackServiceClient } from '../../proto/gen/osp/v1/stack.js';
import type { Connection } from '../client.js';
import { allStackResources } from '../stack-client.js';
import { UsageError } from '../output.js';
import type { OvercloudBundle } from './bundle.js';
import { toServer } from './nodes.js';

interface Need {
  roles: string[];
  more: number;
  deployed: number;
}

/** Every page of available, not-in-maintenance nodes with the profile. */
async function availableWith(c: Connection, profile: string): Promise<number> {
  const nodes = c.client(NodeServiceClient);
  let count = 0;
  let marker = '';
  do {
    const r = await c.call(nodes, nodes.listNodes, { provisionState: 'available', profile, maintenance: false, driver: '', limit: 0, marker });
    count += r.nodes.length;
    marker = r.nextMarker;
  } while (marker);
  return count;
}

/**
 * Refuses, before anything changes (dry run included), a deploy whose role
 * counts need more new nodes of a profile than are available: the servers
 * would otherwise be created one by one until the first fails to claim a
 * node, leaving a half-grown overcloud. Roles sharing a profile share its
 * nodes. `parameters` are the ones sent with the request (node delete's).
 */
export async function checkCapacity(c: Connection, stacks: StackServiceClient, stack: string, exists: boolean, b: OvercloudBundle, parameters: Record<string, string>): Promise<void> {
  const members = new Map<string, number>();
  if (exists) {
    for (const x of await allStackResources(c, stacks, stack, 1)) {
      const s = toServer(x);
      if (s) members.set(s.role, (members.get(s.role) ?? 0) + 1);
    }
  }
  const value = (name: string) => (name in parameters ? parameters[name] : b.parameterValue(name));
  const byProfile = new Map<string, Need>();
  const wanted: string[] = [];
  for (const role of b.roles) {
    const count = Number(value(`${role.name}Count`) ?? role.countDefault);
    const profile = String(value(`${role.name}Profile`) ?? role.name.toLowerCase());
    const deployed = members.get(role.name) ?? 0;
    if (!Number.isInteger(count) || count <= deployed) continue;
    const need = byProfile.get(profile) ?? { roles: [], more: 0, deployed: 0 };
    need.roles.push(role.name);
    need.more += count - deployed;
    need.deployed += deployed;
    byProfile.set(profile, need);
    wanted.push(`${role.name}Count ${count}`);
  }
  const short: string[] = [];
  for (const [profile, need] of byProfile) {
    const available = await availableWith(c, profile);
    if (available < need.more) {
      short.push(`${need.roles.join(' and ')}: ${need.more} more node${need.more === 1 ? '' : 's'} with profile ${profile} needed (${need.deployed} deployed), ${available} available`);
    }
  }
  if (short.length) {
    throw new UsageError(`overcloud ${stack}: not enough nodes for ${wanted.join(', ')}: ${short.join('; ')}; nothing was changed (ospctl node list --profile PROFILE; lower the count or make nodes available)`);
  }
}
