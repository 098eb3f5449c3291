import type { Node, NodeEvent } from '../../proto/gen/osp/v1/node.js';
import type { NodeRecord } from '../nodes/model.js';
import type { NodeEventRow } from '../store/nodes.js';
import { maskSecrets } from '../security/secrets.js';
import { pickProperties } from '../../common/node-properties.js';

/**
 * The only way a stored node becomes an answer. It masks here, so no service
 * (present or future) can hand out a BMC password or its ciphertext by
 * forgetting to.
 */
export function toProtoNode(n: NodeRecord): Node {
  return {
    uuid: n.uuid, name: n.name, ports: n.ports, driver: n.driver, driverInfo: maskSecrets(n.driverInfo),
    properties: pickProperties(n.properties),
    capabilities: n.capabilities, rootDevice: n.rootDevice, provisionState: n.provisionState, powerState: n.powerState,
    maintenance: n.maintenance, maintenanceReason: n.maintenanceReason, lastError: n.lastError, currentStep: n.currentStep, createdAt: n.createdAt, updatedAt: n.updatedAt,
  };
}

export function toProtoEvent(e: NodeEventRow): NodeEvent {
  return { id: e.id, nodeUuid: e.node_uuid, time: e.time, type: e.type, actor: e.actor, message: e.message, data: e.data };
}
