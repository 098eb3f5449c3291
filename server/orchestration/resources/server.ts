import type { Logger } from '../../../common/logging.js';
import { OspError } from '../../../common/errors.js';
import type { Database } from '../../store/db.js';
import { nodeStore } from '../../store/nodes.js';
import type { NodeRegistry } from '../../nodes/registry.js';
import type { NodeRecord } from '../../nodes/model.js';
import type { DeployOptions } from '../../provision/deploy-flow.js';
import { BOOT_EVENT } from '../../provision/boot-watch.js';
import { ResourceFailure, type ResourceContext, type ResourcePlugin } from '../engine/contract.js';
import { sameJson } from '../engine/state.js';
import { NodeClaims, type ClaimOwner } from './node-claims.js';
import { NodeWaits, type NodeWaitSources } from './node-waits.js';
import { describeMatch, parseServerProps, SERVER_ALIASES, SERVER_TYPE, type ServerProps } from './server-properties.js';

/**
 * OS::Osp::Server: a bare-metal machine as a stack resource (Nova + Ironic
 * in one). create claims an available node that matches (node-claims.ts)
 * and starts the deploy; ready waits until the node is `active` and the
 * deployed system's agent has connected (the boot watch's `deploy-boot`
 * event); delete undeploys (cleaning) and releases the claim.
 *
 * Update never replaces a server except when the pinned `node` changes: an
 * image change would need the operator's "rebuild on image change", which
 * stack requests cannot say yet, so a new image (like a new name, metadata,
 * keys or user data) is recorded and reported, not applied to the deployed
 * disk. `name` defaults to the node's name.
 */

export interface ServerData {
  [key: string]: unknown;
  claim: string;
  /** Not `node`: a ResourceFailure's details (where `node` is the node's name) are merged into the data. */
  nodeUuid: string;
  nodeName: string;
  name: string;
  image: string;
  profile: string;
  /** The node's transition into `deploying` for this server: boot-watch events after it are this deploy's. */
  deployEventId: number;
  connected?: boolean;
  address?: string;
  metadata: Record<string, string>;
  /** Set by an update whose change is not applied to the deployed disk (see above). */
  pending?: string[];
}

export interface ServerDeps {
  db: Database;
  registry: NodeRegistry;
  deploy: {
    deploy(id: string, image: string, o: DeployOptions, actor: string): Promise<NodeRecord>;
    undeploy(id: string, actor: string): Promise<NodeRecord>;
    bootWatch: NodeWaitSources['bootWatch'];
  };
  states: NodeWaitSources['states'];
  /** InspectionFlow.abort: a deploy still waiting on its ramdisk is stopped before the undeploy. */
  abort(id: string, actor: string): Promise<unknown>;
  /** The provisioning network's DHCP leases (the pxe store), for `first_address` when the node has no static one. */
  leases(): Promise<{ mac: string; ipv4Address: string }[]>;
  log: Logger;
}

const LEASE_READ_REUSE_MS = 1000;
const DEPLOYING = ['deploying', 'wait call-back'];
const TEARING_DOWN = ['deleting', 'cleaning', 'clean wait'];
const DEPLOYED = ['active', 'deploy failed', 'error'];

function ownerOf(ctx: ResourceContext): ClaimOwner {
  return { key: `${ctx.stack.id}/${ctx.name}`, stackPath: ctx.stack.path, resource: ctx.name };
}

function parse(p: Record<string, unknown>): ServerProps {
  const { props, problems } = parseServerProps(p);
  if (problems.length) throw new ResourceFailure(problems.join('; '), { problems });
  return props;
}

function driveOptions(props: ServerProps): DeployOptions {
  return { hostname: props.hostname, userData: props.userData === undefined ? undefined : Buffer.from(props.userData), sshKeys: props.sshKeys, metadata: props.metadata };
}

class Servers {
  private readonly claims: NodeClaims;
  private readonly waits: NodeWaits;
  private leaseRead?: { atMs: number; read: Promise<{ mac: string; ipv4Address: string }[]> };

  constructor(private readonly d: ServerDeps) {
    this.claims = new NodeClaims(d.db, d.registry);
    this.waits = new NodeWaits({ states: d.states, bootWatch: d.deploy.bootWatch });
  }

  async create(ctx: ResourceContext, p: Record<string, unknown>): Promise<ServerData> {
    const props = parse(p);
    const { claim, node } = await this.claims.claim(ownerOf(ctx), props.capabilities, props.node);
    let n = node;
    // A create repeated after a restart finds its node already deploying or deployed: ready observes it.
    if (n.provisionState === 'available') {
      ctx.progress(`claimed node ${n.name} (${describeMatch(props.capabilities)}); deploying image ${props.image}`);
      try {
        n = await this.d.deploy.deploy(n.uuid, props.image, driveOptions(props), ctx.actor);
      } catch (e) {
        await this.claims.release(claim.id);
        const msg = e instanceof Error ? e.message : String(e);
        throw new ResourceFailure(`node ${n.name}: the deploy did not start: ${msg}`, { node: n.name, nodeUuid: n.uuid, ...(e instanceof OspError ? { code: e.code } : {}) });
      }
    }
    const into = await nodeStore.lastTransitionInto(this.d.db, n.uuid, 'deploying');
    return {
      claim: claim.id, nodeUuid: n.uuid, nodeName: n.name, name: props.hostname ?? n.name, image: props.image, profile: n.capabilities.profile ?? '',
      deployEventId: into?.id ?? 0, metadata: props.metadata,
    };
  }

  /** Until the node is active and its deployed agent connected; the node's own error when the deploy fails. */
  async ready(ctx: ResourceContext, data: ServerData): Promise<ServerData> {
    if (data.connected) return data;
    const w = this.waits.watch(data.nodeUuid);
    let said = '';
    try {
      for (;;) {
        const n = await this.node(data);
        if (n.provisionState === 'active') {
          const ends = await nodeStore.eventsSince(this.d.db, n.uuid, data.deployEventId, [BOOT_EVENT.connected, BOOT_EVENT.timeout]);
          const end = ends.at(-1);
          if (end?.type === BOOT_EVENT.connected) return { ...data, connected: true, address: await this.address(n) };
          if (end?.type === BOOT_EVENT.timeout) throw new ResourceFailure(`node ${n.name}: ${end.message}`, { node: n.name, nodeUuid: n.uuid });
        } else if (n.provisionState === 'deploy failed') {
          throw new ResourceFailure(`node ${n.name}: deploy failed: ${n.lastError || '(no error recorded)'}`, { node: n.name, nodeUuid: n.uuid, lastError: n.lastError });
        } else if (!DEPLOYING.includes(n.provisionState)) {
          throw new ResourceFailure(`node ${n.name} left the deploy: it is '${n.provisionState}'${n.lastError ? `: ${n.lastError}` : ''}`, { node: n.name, nodeUuid: n.uuid });
        }
        const line = n.provisionState === 'active' ? `node ${n.name}: active, waiting for its deployed agent to connect` : `node ${n.name}: ${n.provisionState}`;
        if (line !== said) ctx.progress((said = line));
        await w.next(ctx.signal);
      }
    } finally {
      w.close();
    }
  }

  private async node(data: ServerData): Promise<NodeRecord> {
    try {
      return await this.d.registry.get(data.nodeUuid);
    } catch (e) {
      if (e instanceof OspError && e.code === 'NODE_NOT_FOUND') throw new ResourceFailure(`node ${data.nodeName} (${data.nodeUuid}) was deleted from the registry`, { node: data.nodeName });
      throw e;
    }
  }

  /** The provisioning address: the node's static one, else a DHCP lease of one of its ports; '' when ospd knows none. */
  private async address(n: NodeRecord): Promise<string> {
    if (n.properties.ipv4Address) return n.properties.ipv4Address;
    const macs = new Set(n.ports.map((m) => m.toLowerCase()));
    return (await this.leases()).find((l) => macs.has(l.mac.toLowerCase()))?.ipv4Address ?? '';
  }

  /** One read of the leases for every server completing within a second (a group of hundreds completes together). */
  private leases(): Promise<{ mac: string; ipv4Address: string }[]> {
    const now = Date.now();
    if (!this.leaseRead || now - this.leaseRead.atMs > LEASE_READ_REUSE_MS) {
      const read = this.d.leases();
      this.leaseRead = { atMs: now, read };
      read.catch(() => { if (this.leaseRead?.read === read) this.leaseRead = undefined; });
    }
    return this.leaseRead.read;
  }

  /** Records what is not applied to a deployed disk, and says so. */
  async update(ctx: ResourceContext, data: ServerData, p: Record<string, unknown>, previous: Record<string, unknown>): Promise<ServerData> {
    const props = parse(p);
    const changed = Object.keys({ ...p, ...previous }).filter((k) => !sameJson(p[k], previous[k])).sort();
    const notApplied = changed.filter((k) => ['image', 'name', 'user_data', 'ssh_keys', 'metadata'].includes(k));
    if (notApplied.length) {
      ctx.progress(`node ${data.nodeName}: ${notApplied.join(', ')} recorded, not applied to the deployed disk (a rebuild on image change is not requested)`);
    }
    return { ...data, metadata: props.metadata, pending: notApplied.length ? notApplied : undefined };
  }

  async delete(ctx: ResourceContext, data: ServerData | undefined): Promise<void> {
    const claim = data ? { id: data.claim, nodeUuid: data.nodeUuid } : await this.claims.byOwner(ownerOf(ctx).key);
    if (!claim) return;
    const w = this.waits.watch(claim.nodeUuid);
    try {
      for (;;) {
        const n = await this.d.registry.get(claim.nodeUuid).catch((e: unknown) => {
          if (e instanceof OspError && e.code === 'NODE_NOT_FOUND') return undefined;
          throw e;
        });
        // Whatever is not deployed or being undeployed is free: the claim is all there is to undo.
        if (!n || (!DEPLOYING.includes(n.provisionState) && !TEARING_DOWN.includes(n.provisionState) && !DEPLOYED.includes(n.provisionState))) break;
        // `deploying` lasts only until the boot into the ramdisk is set up; abort is for the wait after it.
        if (n.provisionState === 'wait call-back') {
          ctx.progress(`node ${n.name}: aborting the deploy`);
          await this.d.abort(n.uuid, ctx.actor);
          continue;
        }
        if (DEPLOYED.includes(n.provisionState)) {
          ctx.progress(`node ${n.name}: undeploying (then cleaning)`);
          await this.d.deploy.undeploy(n.uuid, ctx.actor);
          continue;
        }
        ctx.progress(`node ${n.name}: ${n.provisionState}`);
        await w.next(ctx.signal);
      }
      const n = await this.d.registry.get(claim.nodeUuid).catch(() => undefined);
      if (n?.provisionState === 'clean failed') {
        throw new ResourceFailure(`node ${n.name}: cleaning after the undeploy failed: ${n.lastError || '(no error recorded)'}; the claim is kept until the node is fixed and the delete retried`, {
          node: n.name, nodeUuid: n.uuid, lastError: n.lastError,
        });
      }
      await this.claims.release(claim.id);
    } finally {
      w.close();
    }
  }

  async check(data: ServerData): Promise<void> {
    const n = await this.node(data);
    if (n.provisionState !== 'active') throw new ResourceFailure(`node ${n.name} is '${n.provisionState}', expected active`, { node: n.name });
    if (!(await this.claims.held(data.claim))) throw new ResourceFailure(`node ${n.name}: the server's claim ${data.claim} is gone`, { node: n.name });
  }
}

function attribute(data: ServerData, name: string): unknown {
  switch (name) {
    case 'name': return data.name;
    case 'node_uuid': return data.nodeUuid;
    case 'node_name': return data.nodeName;
    case 'profile': return data.profile;
    case 'first_address': return data.address ?? '';
    // Nova's shape: network name → addresses.
    case 'networks': return data.address ? { provisioning: [data.address] } : {};
    default: return undefined;
  }
}

function serverPlugin(type: string, s: Servers): ResourcePlugin<ServerData> {
  return {
    type,
    attributes: ['name', 'node_uuid', 'node_name', 'networks', 'first_address', 'profile'],
    replaceOn: ['node'],
    createIdempotent: true,
    validate: (p) => parseServerProps(p).problems,
    create: (ctx, p) => s.create(ctx, p),
    ready: (ctx, data) => s.ready(ctx, data),
    update: (ctx, data, p, prev) => s.update(ctx, data, p, prev),
    delete: (ctx, data) => s.delete(ctx, data),
    check: (_ctx, data) => s.check(data),
    // The node's uuid, as Nova's server id: SoftwareDeployment's `server: {get_resource: …}` finds the node by it.
    reference: (data) => data.nodeUuid,
    attribute,
  };
}

/** OS::Osp::Server, and OS::Nova::Server / OS::TripleO::Server served by the same implementation. */
export function serverPlugins(deps: ServerDeps): ResourcePlugin[] {
  const s = new Servers(deps);
  return [SERVER_TYPE, ...SERVER_ALIASES].map((t) => serverPlugin(t, s)) as unknown as ResourcePlugin[];
}
