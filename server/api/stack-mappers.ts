import {
  HeatStatus, type DeploymentFailure, type Stack, type StackEvent, type StackOutput, type StackPlan, type StackResource,
} from '../../proto/gen/osp/v1/stack.js';
import type {
  DeploymentFailure as FailureView, HeatStatus as HeatStatusName, ResourceDetail, ResourceView, StackDetail, StackEvent as EventView,
  StackOutput as OutputView, StackPlan as PlanView, StackSummary,
} from '../orchestration/engine/contract.js';
import { MASK, SecretBox } from '../security/secrets.js';

/**
 * The engine's views as answers. The engine masks hidden parameters and
 * secret resource data in its views; this layer only adds a net for a value
 * still sealed at rest (its ciphertext must never leave ospd either).
 */

export const MINUTE_MS = 60_000;

export function toProtoStatus(s: HeatStatusName): HeatStatus {
  return HeatStatus[`HEAT_STATUS_${s}` as keyof typeof HeatStatus] ?? HeatStatus.HEAT_STATUS_UNSPECIFIED;
}

function unsealed(v: unknown): unknown {
  if (typeof v === 'string') return SecretBox.isSealed(v) ? MASK : v;
  if (Array.isArray(v)) return v.map(unsealed);
  if (v && typeof v === 'object' && !Buffer.isBuffer(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unsealed(x)]));
  return v;
}

/** A value as JSON text; undefined (no value) becomes the empty string. */
export function toJsonText(v: unknown): string {
  return v === undefined ? '' : (JSON.stringify(unsealed(v)) ?? '');
}

/** Each value as JSON text (the API's `*_json` maps). */
export function toJsonMap(values: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, toJsonText(v)]));
}

function toProtoOutput(o: OutputView): StackOutput {
  return { name: o.name, description: o.description, valueJson: toJsonText(o.value), error: o.error ?? '' };
}

export function toProtoStack(s: StackSummary | StackDetail): Stack {
  const detail = 'outputs' in s ? s : undefined;
  return {
    id: s.id, name: s.name, status: toProtoStatus(s.status), statusReason: s.statusReason,
    resourcesTotal: s.resourcesTotal, resourcesComplete: s.resourcesComplete, timeoutMs: s.timeoutMins * MINUTE_MS,
    createdAt: s.createdAt, updatedAt: s.updatedAt,
    description: detail?.description ?? '', parametersJson: detail ? toJsonMap(detail.parameters) : {},
    outputs: detail ? detail.outputs.map(toProtoOutput) : [],
  };
}

export function toProtoPlan(p: PlanView): StackPlan {
  return { create: p.create, update: p.update, replace: p.replace, delete: p.delete, unchanged: p.unchanged };
}

export function toProtoResource(r: ResourceView | ResourceDetail): StackResource {
  const detail = 'properties' in r ? r : undefined;
  return {
    name: r.name, type: r.type, stackPath: r.stackPath, physicalId: r.physicalId, status: toProtoStatus(r.status),
    statusReason: r.statusReason, updatedAt: r.updatedAt, requiredBy: r.requiredBy,
    propertiesJson: detail ? toJsonMap(detail.properties) : {}, attributesJson: detail ? toJsonMap(detail.attributes) : {},
  };
}

export function toProtoStackEvent(e: EventView): StackEvent {
  return {
    id: e.id, stack: e.stack, stackPath: e.stackPath, resource: e.resource, physicalId: e.physicalId,
    status: toProtoStatus(e.status), statusReason: e.statusReason, occurredAt: e.at,
  };
}

export function toProtoFailure(f: FailureView): DeploymentFailure {
  return {
    stackPath: f.stackPath, resource: f.resource, node: f.node, config: f.config, statusCode: f.statusCode,
    stderrTail: f.stderrTail, statusReason: f.statusReason,
  };
}
