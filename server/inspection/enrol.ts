import { isOspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import type { NodeRecord } from '../nodes/model.js';
import { WAIT_STATES } from '../nodes/states.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { AgentTokens } from './flow.js';
import { currentWait, RAMDISK_EVENT } from './history.js';
import { discoveredName, findMachine, lastProvisionEventId, lookedUpSince, normaliseLookup } from './lookup.js';


export interface LookupAnswer {
  node?: NodeRecord;
  token?: string;
  message: string;
}

/**
 * The ramdisk's first call: which node is this machine, and its token. One
 * token per boot: a second lookup in the same wait (or discovery epoch) gets
 * none, so a token seen once cannot be fetched again by another machine
 * claiming the same MAC.
 */
export class RamdiskEnrolment {
  constructor(
    private readonly db: Database,
    private readonly registry: NodeRegistry,
    private readonly tokens: AgentTokens,
    private readonly discovery: () => boolean,
    private readonly log: Logger,
  ) {}

  async lookup(req: { macs: string[]; bmcAddress: string; serial: string }): Promise<LookupAnswer> {
    const { macs, bmcAddress } = normaliseLookup(req.macs, req.bmcAddress);
    if (!macs.length && !bmcAddress) return { message: 'no MAC or BMC address given' };
    let node = await findMachine(this.db, macs, bmcAddress);
    if (!node) {
      if (!this.discovery()) {
        this.log.info({ macs, bmcAddress }, 'lookup from an unknown machine (discovery off)');
        return { message: 'unknown machine and discovery is off' };
      }
      node = await this.discover(macs, bmcAddress, req.serial);
      return this.grant(node, 0, { macs, bmcAddress, discovered: true });
    }
    if (WAIT_STATES.includes(node.provisionState)) {
      const w = await currentWait(this.db, node.uuid, node.provisionState);
      return this.grant(node, w?.eventId ?? 0, { macs, bmcAddress });
    }
    if (node.provisionState === 'enroll' && this.discovery()) {
      await nodeStore.appendEvent(this.db, { nodeUuid: node.uuid, type: RAMDISK_EVENT.discovery, actor: 'ramdisk', message: `machine booted the ramdisk and matched node ${node.name}`, data: { macs, bmcAddress } });
      return this.grant(node, await lastProvisionEventId(this.db, node.uuid), { macs, bmcAddress });
    }
    return { message: `node ${node.name} is '${node.provisionState}': nothing for the ramdisk to do` };
  }

  private async grant(node: NodeRecord, sinceEventId: number, data: Record<string, unknown>): Promise<LookupAnswer> {
    if (await lookedUpSince(this.db, node.uuid, sinceEventId)) {
      await nodeStore.appendEvent(this.db, { nodeUuid: node.uuid, type: 'ramdisk-lookup-refused', actor: 'ramdisk', message: 'second lookup in the same boot refused', data });
      this.log.warn({ node: node.name }, 'second ramdisk lookup refused');
      return { node, message: `node ${node.name} already looked up in this boot; no new token` };
    }
    const { token } = await this.tokens.issueToken(node.uuid, 'ramdisk-lookup');
    await nodeStore.appendEvent(this.db, { nodeUuid: node.uuid, type: RAMDISK_EVENT.lookup, actor: 'ramdisk', message: `ramdisk looked up in '${node.provisionState}'`, data });
    return { node, token, message: 'ok' };
  }

  private async discover(macs: string[], bmcAddress: string, serial: string): Promise<NodeRecord> {
    const names = discoveredName(serial, macs);
    let last: unknown;
    for (const name of names) {
      try {
        // The BMC address is known but not its credentials: the operator adds them, then runs manage.
        const node = await this.registry.create({
          name, ports: macs, driver: bmcAddress ? 'ipmi' : 'fake', driverInfo: bmcAddress ? { address: bmcAddress } : {},
          properties: {}, capabilities: {}, rootDevice: {},
        }, 'discovery');
        await nodeStore.appendEvent(this.db, { nodeUuid: node.uuid, type: RAMDISK_EVENT.discovery, actor: 'ramdisk', message: `discovered unknown machine as ${node.name}`, data: { macs, bmcAddress, serial } });
        this.log.info({ node: node.name, macs }, 'machine discovered');
        return node;
      } catch (e) {
        last = e;
        if (!isOspError(e) || e.code !== 'NODE_NAME_IN_USE') throw e;
      }
    }
    throw last ?? new Error('no name for the discovered machine');
  }
}
