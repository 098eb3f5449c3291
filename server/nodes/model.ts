import type { NodeProperties } from '../../common/node-properties.js';

/** Ironic's provision states (ARCHITECTURE.md); `enroll` at creation. */
export const PROVISION_STATES = [
  'enroll', 'verifying', 'manageable', 'inspecting', 'inspect wait', 'inspect failed',
  'cleaning', 'clean wait', 'clean failed', 'available', 'deploying', 'wait call-back',
  'deploy failed', 'active', 'deleting', 'error',
] as const;
export type ProvisionState = (typeof PROVISION_STATES)[number];

/** States in which the node's record may be removed. */
export const DELETABLE_STATES: readonly ProvisionState[] = [
  'enroll', 'manageable', 'available', 'inspect failed', 'clean failed', 'deploy failed', 'error',
];

export const DRIVERS = ['ipmi', 'redfish', 'fake'] as const;
export type DriverName = (typeof DRIVERS)[number];

/** What an operator supplies; plain-text secrets, validated before use. */
export interface NodeInput {
  name: string;
  ports: string[];
  driver: DriverName;
  driverInfo: Record<string, string>;
  properties: NodeProperties;
  capabilities: Record<string, string>;
  rootDevice: Record<string, string>;
}

/** A node as the server holds it. Secret driver_info values are sealed (enc:v1:…). */
export interface NodeRecord extends NodeInput {
  uuid: string;
  provisionState: ProvisionState;
  powerState: string;
  maintenance: boolean;
  maintenanceReason: string;
  lastError: string;
  /** What the node is doing now while a flow drives it ("write image: 45%"); '' when idle. */
  currentStep: string;
  createdAt: string;
  updatedAt: string;
}
