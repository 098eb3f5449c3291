import { randomUUID } from 'node:crypto';
import { OspError } from '../../../common/errors.js';
import type { Database, Queryable } from '../../store/db.js';
import { serverClaimStore, type ServerClaimRow } from '../../store/server-claims.js';
import type { NodeRegistry } from '../../nodes/registry.js';
import type { NodeRecord } from '../../nodes/model.js';
import { ResourceFailure } from '../engine/contract.js';
import { describeMatch } from './server-properties.js';

export interface ClaimOwner {
  /** `<stack row id>/<resource name>`: stable across restarts, unique in the stack tree. */
  key: string;
  stackPath: string;
  resource: string;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Which node a server gets. Claims are taken inside one write transaction and
 * ospd's store serialises write transactions, so two servers created at the
 * same moment see each other's claim; the UNIQUE node column backs that up.
 */
export class NodeClaims {
  constructor(private readonly db: Database, private readonly registry: NodeRegistry) {}

  /** The owner's claim, taking one when it has none: a create repeated after a restart gets the same node. */
  async claim(owner: ClaimOwner, want: Record<string, string>, pin: string | undefined): Promise<{ claim: ServerClaimRow; node: NodeRecord }> {
    return this.db.transaction(async (tx) => {
      const mine = await serverClaimStore.byOwner(tx, owner.key);
      if (mine) return { claim: mine, node: await this.registry.get(mine.nodeUuid, tx) };
      const node = pin === undefined ? await this.pick(tx, want) : await this.pinned(tx, want, pin);
      const claim: ServerClaimRow = {
        id: randomUUID(), nodeUuid: node.uuid, owner: owner.key, stackPath: owner.stackPath, resource: owner.resource, createdAt: new Date().toISOString(),
      };
      await serverClaimStore.insert(tx, claim);
      return { claim, node };
    });
  }

  private async pick(tx: Queryable, want: Record<string, string>): Promise<NodeRecord> {
    const uuid = await serverClaimStore.firstFree(tx, want);
    if (uuid) return this.registry.get(uuid, tx);
    const c = await serverClaimStore.counts(tx, want);
    const held = c.claimedWith ? `; ${plural(c.claimedWith, 'node')} with it ${c.claimedWith === 1 ? 'is' : 'are'} held by other servers` : '';
    throw new ResourceFailure(
      `no available node matches ${describeMatch(want)}: ${plural(c.freeWith, 'available node')} with it, ${plural(c.freeWithout, 'available node')} without it${held}`
      + ' (set the profile with an inspection rule or `ospctl node set NODE --capability profile=NAME`, or provide more nodes)',
      { match: want, profile: want.profile ?? '', availableWith: c.freeWith, availableWithout: c.freeWithout, claimedWith: c.claimedWith },
    );
  }

  private async pinned(tx: Queryable, want: Record<string, string>, pin: string): Promise<NodeRecord> {
    let n: NodeRecord;
    try {
      n = await this.registry.get(pin, tx);
    } catch (e) {
      if (e instanceof OspError && e.code === 'NODE_NOT_FOUND') throw new ResourceFailure(`property 'node': ${JSON.stringify(pin)}: no such node (ospctl node list)`, { node: pin });
      throw e;
    }
    const held = await serverClaimStore.byNode(tx, n.uuid);
    if (held) throw new ResourceFailure(`property 'node': ${n.name}: already held by server ${held.resource} of stack ${held.stackPath}`, { node: n.name });
    if (n.provisionState !== 'available' || n.maintenance) {
      const why = n.maintenance ? `in maintenance (${n.maintenanceReason || 'no reason given'})` : `'${n.provisionState}'`;
      throw new ResourceFailure(`property 'node': ${n.name} is ${why}: expected an available node`, { node: n.name, state: n.provisionState });
    }
    const missing = Object.entries(want).filter(([k, v]) => n.capabilities[k] !== v);
    if (missing.length) {
      const has = missing.map(([k]) => `${k}:${n.capabilities[k] ?? '(none)'}`).join(',');
      throw new ResourceFailure(`property 'node': ${n.name} does not match ${describeMatch(want)}: it has ${has}`, { node: n.name, match: want });
    }
    return n;
  }

  /** Idempotent. */
  async release(claimId: string): Promise<void> {
    await this.db.transaction((tx) => serverClaimStore.delete(tx, claimId));
  }

  async held(claimId: string): Promise<boolean> {
    return (await serverClaimStore.byId(this.db, claimId)) !== undefined;
  }

  byOwner(key: string): Promise<ServerClaimRow | undefined> {
    return serverClaimStore.byOwner(this.db, key);
  }
}
