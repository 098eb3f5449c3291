import type { Logger } from '../../common/logging.js';
import {
  ConfigServiceService, type ConfigServiceServer, type ConfigRevision, type NodeConfigStatus, type SoftwareDeployment,
} from '../../proto/gen/osp/v1/config.js';
import { parseJsonObject, type NodeConfigs, type NodeConfigStatus as Status } from '../agents/configs.js';
import type { DeploymentDoc, RevisionRow } from '../store/configs.js';
import { OspError } from '../../common/errors.js';
import { unary, type Authenticator } from './call.js';

export function toProtoDeployment(d: DeploymentDoc): SoftwareDeployment {
  return {
    id: d.id, name: d.name, group: d.group, config: d.config,
    inputs: d.inputs.map((i) => ({ name: i.name, valueJson: JSON.stringify(i.value) })),
    optionsJson: d.options ? JSON.stringify(d.options) : '',
  };
}

export function toProtoRevision(r: RevisionRow, nodeName: string): ConfigRevision {
  return {
    nodeUuid: r.nodeUuid, nodeName, revision: r.revision, contentHash: r.contentHash, metadataJson: JSON.stringify(r.metadata),
    deployments: r.deployments.map(toProtoDeployment), createdAt: r.createdAt,
  };
}

function toProtoStatus(s: Status): NodeConfigStatus {
  const res = s.lastAck?.result as { phases?: NodeConfigStatus['phases']; deployments?: NodeConfigStatus['deployments'] } | undefined;
  return {
    nodeUuid: s.node.uuid, nodeName: s.node.name, latestRevision: s.latestRevision, appliedRevision: s.appliedRevision,
    ackedRevision: s.lastAck?.revision ?? 0, status: s.lastAck?.status ?? (s.latestRevision ? 'pending' : ''), ackedAt: s.lastAck?.receivedAt ?? '',
    phases: res?.phases ?? [], deployments: res?.deployments ?? [], connected: s.connected,
  };
}

function fromProtoDeployment(d: SoftwareDeployment | undefined): Omit<DeploymentDoc, 'id'> {
  if (!d) throw new OspError('INVALID_ARGUMENT', 'deployment: missing');
  return {
    name: d.name, group: d.group, config: d.config,
    inputs: d.inputs.map((i) => {
      try {
        return { name: i.name, value: i.valueJson === '' ? '' : JSON.parse(i.valueJson) };
      } catch {
        throw new OspError('INVALID_ARGUMENT', `deployment.inputs.${i.name}: ${JSON.stringify(i.valueJson)}: expected a JSON value`);
      }
    }),
    options: d.optionsJson ? parseJsonObject('deployment.options', d.optionsJson) : null,
  };
}

/** Operator calls on node configuration; agent credentials carry the URL clients use to reach ospd. */
export function configService(configs: NodeConfigs, auth: Authenticator, log: Logger, agentCredentials: () => { server: string; caPem: string; caSha256: string; mqttUrl?: string }) {
  const impl: ConfigServiceServer = {
    setMetadata: unary(log, 'SetMetadata', auth, async (req, ctx) => {
      const r = await configs.setMetadata(req.id, req.metadataJson, ctx.caller.name);
      return toProtoRevision(r, (await configs.get(req.id)).node.name);
    }),
    addDeployment: unary(log, 'AddDeployment', auth, async (req, ctx) => {
      const r = await configs.addDeployment(req.id, fromProtoDeployment(req.deployment), ctx.caller.name);
      return toProtoRevision(r, (await configs.get(req.id)).node.name);
    }),
    removeDeployment: unary(log, 'RemoveDeployment', auth, async (req, ctx) => {
      const r = await configs.removeDeployment(req.id, req.name, ctx.caller.name);
      return toProtoRevision(r, (await configs.get(req.id)).node.name);
    }),
    getConfig: unary(log, 'GetConfig', auth, async (req) => {
      const { node, rev } = await configs.get(req.id, Number(req.revision));
      if (!rev) throw new OspError('CONFIG_REVISION_NOT_FOUND', `node ${node.name} has no configuration yet`);
      return toProtoRevision(rev, node.name);
    }),
    listConfigStatus: unary(log, 'ListConfigStatus', auth, async (req) => ({ nodes: (await configs.status(req.id || undefined)).map(toProtoStatus) })),
    issueAgentToken: unary(log, 'IssueAgentToken', auth, async (req, ctx) => {
      const { node, token } = await configs.issueToken(req.id, ctx.caller.name);
      const c = agentCredentials();
      return { server: c.server, caPem: c.caPem, caSha256: c.caSha256, node: node.name, token, mqttUrl: c.mqttUrl ?? '' };
    }),
    revokeAgentToken: unary(log, 'RevokeAgentToken', auth, async (req, ctx) => ({ revoked: await configs.revokeToken(req.id, ctx.caller.name) })),
  };
  return { definition: ConfigServiceService, impl };
}
