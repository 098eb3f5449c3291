import type { Node } from '../../proto/gen/osp/v1/node.js';
import type { Column } from '../output.js';
import { propertiesBySnakeName } from '../../common/node-properties.js';

export const NODE_COLUMNS: Column<Node>[] = [
  { key: 'uuid', label: 'UUID', get: (n) => n.uuid },
  { key: 'name', label: 'Name', get: (n) => n.name },
  { key: 'power_state', label: 'Power State', get: (n) => n.powerState },
  { key: 'provision_state', label: 'Provisioning State', get: (n) => n.provisionState },
  { key: 'maintenance', label: 'Maintenance', get: (n) => n.maintenance },
  { key: 'maintenance_reason', label: 'Maintenance Reason', get: (n) => n.maintenanceReason },
  { key: 'driver', label: 'Driver', get: (n) => n.driver },
  { key: 'driver_info', label: 'Driver Info', get: (n) => n.driverInfo },
  { key: 'ports', label: 'Ports', get: (n) => n.ports },
  { key: 'properties', label: 'Properties', get: (n) => propertiesBySnakeName(n.properties) },
  { key: 'capabilities', label: 'Capabilities', get: (n) => n.capabilities },
  { key: 'profile', label: 'Profile', get: (n) => n.capabilities.profile ?? '' },
  { key: 'root_device', label: 'Root Device', get: (n) => n.rootDevice },
  { key: 'last_error', label: 'Last Error', get: (n) => n.lastError },
  { key: 'current_step', label: 'Current Step', get: (n) => n.currentStep },
  { key: 'created_at', label: 'Created At', get: (n) => n.createdAt },
  { key: 'updated_at', label: 'Updated At', get: (n) => n.updatedAt },
];
/** The node columns with these keys, in this order. */
export const nodeColumns = (...keys: string[]) => keys.map((k) => NODE_COLUMNS.find((c) => c.key === k)!);
