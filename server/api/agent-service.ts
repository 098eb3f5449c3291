import { Metadata, status, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from '../../common/logging.js';
import { AgentServiceService, type AgentServiceServer, type WatchConfigRequest } from '../../proto/gen/osp/v1/agent.js';
import type { ConfigRevision } from '../../proto/gen/osp/v1/config.js';
import type { NodeConfigs } from '../agents/configs.js';
import { configStore } from '../store/configs.js';
import type { Database } from '../store/db.js';
import type { NodeRegistry } from '../nodes/registry.js';
import { OspError } from '../../common/errors.js';
import { bearer, serverStream, unary, type Authenticator, type Caller } from './call.js';
import { toProtoRevision } from './config-service.js';

/** Agents present their node token and node name; the token is checked in constant time. */
export function agentAuthenticator(configs: NodeConfigs): Authenticator {
  return async (md: Metadata): Promise<Caller> => {
    const token = bearer(md);
    const node = md.get('osp-node')[0];
    if (!token || typeof node !== 'string') throw new OspError('AGENT_TOKEN_INVALID');
    const n = await configs.authenticate(node, token);
    return { kind: 'agent', node: n.uuid, name: `agent:${n.name}` };
  };
}

/** The agent side: a config stream that pushes each committed revision, a poll fallback, and acknowledgements. */
export class AgentApi {
  private readonly streams = new Set<ServerWritableStream<WatchConfigRequest, ConfigRevision>>();

  constructor(
    private readonly db: Database,
    private readonly nodes: NodeRegistry,
    private readonly configs: NodeConfigs,
    private readonly log: Logger,
  ) {}

  service() {
    const auth = agentAuthenticator(this.configs);
    const impl: AgentServiceServer = {
      watchConfig: serverStream(this.log, 'WatchConfig', auth, (call, ctx) => this.watch(call, ctx.caller, ctx.log)),
      pollConfig: unary(this.log, 'PollConfig', auth, async (req, ctx) => {
        const node = await this.nodes.get(ctx.caller.node!);
        const rev = await configStore.latest(this.db, node.uuid);
        return { revision: rev && rev.revision > Number(req.appliedRevision) ? toProtoRevision(rev, node.name) : undefined };
      }),
      ackRevision: unary(this.log, 'AckRevision', auth, async (req, ctx) => {
        const node = await this.nodes.get(ctx.caller.node!);
        await this.configs.ack(node, {
          revision: Number(req.revision), status: req.status, configHash: req.configHash, receivedAt: new Date().toISOString(),
          result: { phases: req.phases, deployments: req.deployments, startedAt: req.startedAt, finishedAt: req.finishedAt },
        });
        return {};
      }),
    };
    return { definition: AgentServiceService, impl, closeStreams: () => this.closeAll() };
  }

  private async watch(call: ServerWritableStream<WatchConfigRequest, ConfigRevision>, caller: Caller, log: Logger): Promise<void> {
    const node = await this.nodes.get(caller.node!);
    this.streams.add(call);
    const done = new Promise<void>((resolve) => {
      call.on('cancelled', resolve);
      call.on('close', resolve);
      call.on('error', resolve);
      call.on('finish', resolve);
    });
    // Subscribe before reading the latest revision, so a commit in between is not missed
    // (the agent ignores a revision it already has).
    const unsubscribe = this.configs.subscribe(node.uuid, (rev) => call.write(toProtoRevision(rev, node.name)), () => {
      log.info({ node: node.name }, 'agent token revoked: closing its config stream');
      // grpc-js turns an 'error' event on a server stream into the call's status.
      call.emit('error', { code: status.UNAUTHENTICATED, details: 'agent token invalid or revoked' });
    });
    log.info({ node: node.name, applied: Number(call.request.appliedRevision) }, 'agent config stream opened');
    // Headers now, not with the first revision: the agent learns at once that it is accepted,
    // even for a node that has no configuration yet.
    call.sendMetadata(new Metadata());
    try {
      const latest = await configStore.latest(this.db, node.uuid);
      if (latest) call.write(toProtoRevision(latest, node.name));
      await done;
    } finally {
      unsubscribe();
      this.streams.delete(call);
      log.info({ node: node.name }, 'agent config stream closed');
    }
  }

  /** Ends every open stream so agents reconnect (or poll) instead of waiting on a dying server. */
  closeAll(): void {
    for (const s of this.streams) s.end();
  }

  get openStreams(): number {
    return this.streams.size;
  }
}
