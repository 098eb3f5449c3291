import type { Logger } from '../../common/logging.js';
import {
  NodeServiceService, type NodeSpec, type NodeServiceServer,
} from '../../proto/gen/osp/v1/node.js';
import { pickProperties } from '../../common/node-properties.js';
import type { NodeInput, DriverName } from '../nodes/model.js';
import type { NodeRegistry } from '../nodes/registry.js';
import { normaliseMac } from '../../common/mac.js';
import { DRIVER_ALIASES, canonicalInfoKey } from '../nodes/validate.js';
import { toProtoEvent, toProtoNode } from './mappers.js';
import { unary, type Authenticator } from './call.js';

function fromSpec(s: NodeSpec | undefined): NodeInput {
  const spec = s ?? ({} as NodeSpec);
  const driver = (DRIVER_ALIASES[(spec.driver ?? '').toLowerCase()] ?? spec.driver) as DriverName;
  return {
    name: spec.name ?? '',
    // Invalid MACs are kept as given so validation names them.
    ports: (spec.ports ?? []).map((m) => normaliseMac(m) ?? m),
    driver,
    driverInfo: Object.fromEntries(Object.entries(spec.driverInfo ?? {}).map(([k, v]) => [canonicalInfoKey(driver, k), v])),
    properties: pickProperties(spec.properties),
    capabilities: spec.capabilities ?? {},
    rootDevice: spec.rootDevice ?? {},
  };
}

export function nodeService(registry: NodeRegistry, auth: Authenticator, log: Logger) {
  const show = toProtoNode;
  const impl: NodeServiceServer = {
    createNode: unary(log, 'CreateNode', auth, async (req, ctx) => show(await registry.create(fromSpec(req.spec), ctx.caller.name))),
    getNode: unary(log, 'GetNode', auth, async (req) => show(await registry.get(req.id))),
    listNodes: unary(log, 'ListNodes', auth, async (req) => {
      const r = await registry.list({
        provisionState: req.provisionState || undefined, profile: req.profile || undefined, maintenance: req.maintenance,
        driver: req.driver || undefined, limit: req.limit, marker: req.marker || undefined,
      });
      return { nodes: r.nodes.map(show), nextMarker: r.nextMarker };
    }),
    updateNode: unary(log, 'UpdateNode', auth, async (req, ctx) => show(await registry.update(req.id, req.patch, ctx.caller.name))),
    deleteNode: unary(log, 'DeleteNode', auth, async (req, ctx) => ({ uuid: await registry.delete(req.id, ctx.caller.name) })),
    importNodes: unary(log, 'ImportNodes', auth, async (req, ctx) => {
      const r = await registry.import(req.content, req.source || 'node file', ctx.caller.name);
      return { created: r.created.map(show), updated: r.updated.map(show), unchanged: r.unchanged.map(show) };
    }),
    listNodeEvents: unary(log, 'ListNodeEvents', auth, async (req) => ({ events: (await registry.events(req.id, req.limit)).map(toProtoEvent) })),
  };
  return { definition: NodeServiceService, impl };
}
