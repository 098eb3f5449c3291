import type { Logger } from '../../common/logging.js';
import {
  NodeServiceService, type Node, type NodeSpec, type NodeServiceServer, type NodeEvent,
} from '../../proto/gen/osp/v1/node.js';
import type { NodeInput, NodeProperties, NodeRecord, DriverName } from '../nodes/model.js';
import type { NodeRegistry } from '../nodes/registry.js';
import { DRIVER_ALIASES, canonicalInfoKey, normaliseMac } from '../nodes/validate.js';
import type { NodeEventRow } from '../store/nodes.js';
import { unary, type Authenticator } from './call.js';

export function toProtoNode(n: NodeRecord): Node {
  return {
    uuid: n.uuid, name: n.name, ports: n.ports, driver: n.driver, driverInfo: n.driverInfo,
    properties: { cpus: n.properties.cpus, memoryMb: n.properties.memoryMb, localGb: n.properties.localGb, cpuArch: n.properties.cpuArch, ipv4Address: n.properties.ipv4Address },
    capabilities: n.capabilities, rootDevice: n.rootDevice, provisionState: n.provisionState, powerState: n.powerState,
    maintenance: n.maintenance, maintenanceReason: n.maintenanceReason, lastError: n.lastError, createdAt: n.createdAt, updatedAt: n.updatedAt,
  };
}

export function toProtoEvent(e: NodeEventRow): NodeEvent {
  return { id: e.id, nodeUuid: e.node_uuid, time: e.time, type: e.type, actor: e.actor, message: e.message, data: e.data };
}

function fromSpec(s: NodeSpec | undefined): NodeInput {
  const spec = s ?? ({} as NodeSpec);
  const driver = (DRIVER_ALIASES[(spec.driver ?? '').toLowerCase()] ?? spec.driver) as DriverName;
  const p = spec.properties;
  const properties: NodeProperties = {};
  if (p?.cpus !== undefined) properties.cpus = p.cpus;
  if (p?.memoryMb !== undefined) properties.memoryMb = p.memoryMb;
  if (p?.localGb !== undefined) properties.localGb = p.localGb;
  if (p?.cpuArch !== undefined) properties.cpuArch = p.cpuArch;
  if (p?.ipv4Address !== undefined) properties.ipv4Address = p.ipv4Address;
  return {
    name: spec.name ?? '',
    // Invalid MACs are kept as given so validation names them.
    ports: (spec.ports ?? []).map((m) => normaliseMac(m) ?? m),
    driver,
    driverInfo: Object.fromEntries(Object.entries(spec.driverInfo ?? {}).map(([k, v]) => [canonicalInfoKey(driver, k), v])),
    properties,
    capabilities: spec.capabilities ?? {},
    rootDevice: spec.rootDevice ?? {},
  };
}

export function nodeService(registry: NodeRegistry, auth: Authenticator, log: Logger) {
  const show = (n: NodeRecord) => toProtoNode(registry.present(n));
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
