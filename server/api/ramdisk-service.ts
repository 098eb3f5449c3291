import { Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import { OspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import {
  InspectionServiceService, RamdiskServiceService, type CommandsRequest, type InspectionServiceServer,
  type RamdiskCommand, type RamdiskServiceServer,
} from '../../proto/gen/osp/v1/ramdisk.js';
import { serverStream, unary, type Authenticator } from './call.js';
import { toProtoNode } from './mappers.js';
import type { GrpcService } from './server.js';
import type { CommandChannel, Command } from '../inspection/commands.js';
import type { InspectionFlow } from '../inspection/flow.js';
import type { RamdiskEnrolment } from '../inspection/enrol.js';
import type { IntrospectBatch } from '../inspection/batch.js';

const MAX_INVENTORY_BYTES = 4 * 1024 * 1024;

function toProtoCommand(c: Command): RamdiskCommand {
  const d = c.deploy;
  return {
    id: c.id, kind: c.kind, cleanMode: c.cleanMode ?? '',
    deploy: d && {
      imageUrl: d.imageUrl, token: d.token, extents: d.extents.map((e) => ({ startBytes: e.start, lengthBytes: e.length, data: e.data })),
      virtualSizeBytes: d.virtualSizeBytes, rawSha256: d.rawSha256, dataSha256: d.dataSha256, device: d.device, configDrive: d.configDrive,
    },
  };
}

function parseInventory(text: string): Record<string, unknown> {
  if (text.length > MAX_INVENTORY_BYTES) throw new OspError('INVALID_ARGUMENT', `inventory_json: ${text.length} bytes: expected at most ${MAX_INVENTORY_BYTES}`, { field: 'inventory_json' });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new OspError('INVALID_ARGUMENT', `inventory_json: not JSON (${(e as Error).message}): expected an inventory object`, { field: 'inventory_json' });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new OspError('INVALID_ARGUMENT', 'inventory_json: expected a JSON object', { field: 'inventory_json' });
  return v as Record<string, unknown>;
}

/** Lookup is the only call without a token: the machine has none yet. */
const anonymous: Authenticator = () => ({ kind: 'agent', name: 'ramdisk-lookup' });

/** The ramdisk agent's gRPC side: lookup, the command stream, reports. */
export function ramdiskService(deps: {
  flow: InspectionFlow; enrolment: RamdiskEnrolment; channel: CommandChannel; agentAuth: Authenticator; log: Logger;
}): GrpcService {
  const { flow, enrolment, channel, agentAuth, log } = deps;
  const impl: RamdiskServiceServer = {
    lookup: unary(log, 'Lookup', anonymous, async (req) => {
      const a = await enrolment.lookup({ macs: req.macs, bmcAddress: req.bmcAddress, serial: req.serial });
      // Without a token the node's identity is not given away either.
      return a.token ? { nodeUuid: a.node!.uuid, nodeName: a.node!.name, token: a.token, message: a.message } : { nodeUuid: '', nodeName: '', token: '', message: a.message };
    }),
    commands: serverStream(log, 'Commands', agentAuth, async (call: ServerWritableStream<CommandsRequest, RamdiskCommand>, ctx) => {
      const uuid = ctx.caller.node!;
      const done = new Promise<void>((resolve) => {
        for (const ev of ['cancelled', 'close', 'error', 'finish']) call.on(ev, () => resolve());
      });
      const detach = channel.attach(uuid, { write: (c) => call.write(toProtoCommand(c)), end: () => call.end() });
      call.sendMetadata(new Metadata());
      try {
        const first = await flow.streamOpened(uuid);
        if (first) channel.send(uuid, first);
        await done;
      } finally {
        detach();
      }
    }),
    reportInventory: unary(log, 'ReportInventory', agentAuth, async (req, ctx) => {
      await flow.inventoryReceived(ctx.caller.node!, parseInventory(req.inventoryJson));
      return {};
    }),
    reportCommandResult: unary(log, 'ReportCommandResult', agentAuth, async (req, ctx) => {
      await flow.commandResult(ctx.caller.node!, { commandId: req.commandId, status: req.status, message: req.message, percent: req.percent });
      return {};
    }),
  };
  return { definition: RamdiskServiceService, impl } as unknown as GrpcService;
}

/** The admin side: inspect, provide, abort, and the batch. */
export function inspectionService(deps: { flow: InspectionFlow; batch: IntrospectBatch; auth: Authenticator; log: Logger }): GrpcService {
  const { flow, batch, auth, log } = deps;
  const node = (field: string, v: string) => {
    if (!v) throw new OspError('INVALID_ARGUMENT', `${field}: "": expected a node name or uuid`, { field });
    return v;
  };
  const impl: InspectionServiceServer = {
    inspectNode: unary(log, 'InspectNode', auth, async (req, ctx) => toProtoNode(await flow.inspect(node('node', req.node), ctx.caller.name))),
    provideNode: unary(log, 'ProvideNode', auth, async (req, ctx) => toProtoNode(await flow.provide(node('node', req.node), ctx.caller.name))),
    abortNode: unary(log, 'AbortNode', auth, async (req, ctx) => toProtoNode(await flow.abort(node('node', req.node), ctx.caller.name))),
    introspectManageable: unary(log, 'IntrospectManageable', auth, async (req, ctx) => {
      if (req.concurrency < 0) throw new OspError('INVALID_ARGUMENT', `concurrency: ${req.concurrency}: expected 0 (server default) or more`, { field: 'concurrency' });
      const nodes = await batch.start({ provide: req.provide, concurrency: req.concurrency }, ctx.caller.name);
      return { nodes: nodes.map(toProtoNode) };
    }),
  };
  return { definition: InspectionServiceService, impl } as unknown as GrpcService;
}
