import type { Logger } from '../../common/logging.js';
import { OspError } from '../../common/errors.js';
import { ProvisionServiceService, type ProvisionServiceServer } from '../../proto/gen/osp/v1/provision.js';
import { parseJsonObject } from '../agents/configs.js';
import type { DeployFlow, DeployOptions } from '../provision/deploy-flow.js';
import { unary, type Authenticator } from './call.js';
import { toProtoNode } from './mappers.js';
import type { GrpcService } from './server.js';

function nodeRef(v: string): string {
  if (!v) throw new OspError('INVALID_ARGUMENT', 'node: "": expected a node name or uuid', { field: 'node', value: '', expected: 'a node name or uuid' });
  return v;
}

function options(req: { hostname: string; userData: Buffer; sshKeys: string[]; metadataJson: string }): DeployOptions {
  // Values are checked (strings, lengths) with the rest of the drive's input.
  const metadata = req.metadataJson ? parseJsonObject('metadata_json', req.metadataJson) as Record<string, string> : undefined;
  return { hostname: req.hostname || undefined, userData: req.userData.length ? Buffer.from(req.userData) : undefined, sshKeys: req.sshKeys, metadata };
}

/** Deploy, rebuild and undeploy (admin token); each answers with the node as the operation left it, the rest happens in the background. */
export function provisionService(deploy: DeployFlow, auth: Authenticator, log: Logger): GrpcService {
  const impl: ProvisionServiceServer = {
    deployNode: unary(log, 'DeployNode', auth, async (req, ctx) => {
      if (!req.image) throw new OspError('INVALID_ARGUMENT', 'image: "": expected an image name', { field: 'image', value: '', expected: 'an image name' });
      return { node: toProtoNode(await deploy.deploy(nodeRef(req.node), req.image, options(req), ctx.caller.name)) };
    }),
    rebuildNode: unary(log, 'RebuildNode', auth, async (req, ctx) => ({
      node: toProtoNode(await deploy.rebuild(nodeRef(req.node), req.image || undefined, options(req), ctx.caller.name)),
    })),
    undeployNode: unary(log, 'UndeployNode', auth, async (req, ctx) => ({ node: toProtoNode(await deploy.undeploy(nodeRef(req.node), ctx.caller.name)) })),
  };
  return { definition: ProvisionServiceService, impl } as unknown as GrpcService;
}
