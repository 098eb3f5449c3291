import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * The one error catalogue. Every error that crosses a program boundary (gRPC
 * answer, CLI exit, log line) carries one of these stable codes; the code's
 * gRPC status and default message live here and nowhere else.
 * Add codes; never change the meaning of an existing one.
 */
export const catalogue = {
  // Generic
  INVALID_ARGUMENT: { status: GrpcStatus.INVALID_ARGUMENT, message: 'invalid argument' },
  NOT_FOUND: { status: GrpcStatus.NOT_FOUND, message: 'not found' },
  ALREADY_EXISTS: { status: GrpcStatus.ALREADY_EXISTS, message: 'already exists' },
  FAILED_PRECONDITION: { status: GrpcStatus.FAILED_PRECONDITION, message: 'operation not allowed in the current state' },
  UNAUTHENTICATED: { status: GrpcStatus.UNAUTHENTICATED, message: 'authentication required' },
  PERMISSION_DENIED: { status: GrpcStatus.PERMISSION_DENIED, message: 'permission denied' },
  UNAVAILABLE: { status: GrpcStatus.UNAVAILABLE, message: 'service unavailable' },
  DEADLINE_EXCEEDED: { status: GrpcStatus.DEADLINE_EXCEEDED, message: 'deadline exceeded' },
  UNIMPLEMENTED: { status: GrpcStatus.UNIMPLEMENTED, message: 'not implemented' },
  INTERNAL: { status: GrpcStatus.INTERNAL, message: 'internal error' },
  // The remaining gRPC statuses, so a status from any peer maps to a catalogue code.
  CANCELLED: { status: GrpcStatus.CANCELLED, message: 'call cancelled' },
  UNKNOWN: { status: GrpcStatus.UNKNOWN, message: 'unknown error' },
  RESOURCE_EXHAUSTED: { status: GrpcStatus.RESOURCE_EXHAUSTED, message: 'resource exhausted' },
  ABORTED: { status: GrpcStatus.ABORTED, message: 'aborted' },
  OUT_OF_RANGE: { status: GrpcStatus.OUT_OF_RANGE, message: 'out of range' },
  DATA_LOSS: { status: GrpcStatus.DATA_LOSS, message: 'data loss' },

  // Configuration
  CONFIG_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'invalid configuration' },

  // Node registry
  NODE_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, message: 'node not found' },
  NODE_NAME_IN_USE: { status: GrpcStatus.ALREADY_EXISTS, message: 'node name already in use' },
  PORT_IN_USE: { status: GrpcStatus.ALREADY_EXISTS, message: 'MAC address already belongs to another node' },
  NODE_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'invalid node' },
  NODE_IMPORT_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'node file rejected' },
  NODE_BUSY: { status: GrpcStatus.FAILED_PRECONDITION, message: 'node is busy' },
  NODE_STATE_INVALID: { status: GrpcStatus.FAILED_PRECONDITION, message: 'action not allowed in the node state' },
  NODE_VERIFICATION_FAILED: { status: GrpcStatus.FAILED_PRECONDITION, message: 'BMC credential verification failed' },

  // BMC
  BMC_AUTH_FAILED: { status: GrpcStatus.FAILED_PRECONDITION, message: 'BMC rejected the credentials' },
  BMC_UNREACHABLE: { status: GrpcStatus.UNAVAILABLE, message: 'BMC unreachable' },
  BMC_TIMEOUT: { status: GrpcStatus.DEADLINE_EXCEEDED, message: 'BMC did not answer in time' },
  BMC_UNSUPPORTED: { status: GrpcStatus.FAILED_PRECONDITION, message: 'BMC does not support this operation' },
  BMC_ERROR: { status: GrpcStatus.INTERNAL, message: 'BMC returned an error' },
  BMC_INSECURE: { status: GrpcStatus.INVALID_ARGUMENT, message: 'insecure BMC setting refused' },

  // Agents
  AGENT_TOKEN_INVALID: { status: GrpcStatus.UNAUTHENTICATED, message: 'agent token invalid or revoked' },
  CONFIG_REVISION_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, message: 'config revision not found' },

  // ospctl (raised by the client itself)
  CLIENT_CONFIG_NOT_UPDATED: { status: GrpcStatus.FAILED_PRECONDITION, message: 'ospctl could not update its client config file' },

  // Agent engine (issue 5: collect / apply / refresh / deployments)
  AGENT_LOCAL_DATA_INSECURE: { status: GrpcStatus.FAILED_PRECONDITION, message: 'agent local-data directory is insecure' },
  AGENT_LOCAL_DATA_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'agent local-data file is not a JSON object' },
  AGENT_TEMPLATE_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'agent template failed to parse' },
  AGENT_CONTROL_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'agent template control (.oac) file invalid' },
  AGENT_RUN_LOCKED: { status: GrpcStatus.ABORTED, message: 'another agent run holds the lock' },
  AGENT_CONFIG_KEY_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, message: 'config key not found' },
  AGENT_CONFIG_TYPE_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'config value has the wrong type' },

  // Image builder (osp-image)
  IMAGE_ELEMENT_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, message: 'image element not found' },
  IMAGE_ELEMENT_CYCLE: { status: GrpcStatus.FAILED_PRECONDITION, message: 'image element dependency cycle' },
  IMAGE_ELEMENT_CONFLICT: { status: GrpcStatus.FAILED_PRECONDITION, message: 'image elements provide the same thing' },
  IMAGE_ELEMENT_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'invalid image element' },
  IMAGE_SCRIPT_FAILED: { status: GrpcStatus.INTERNAL, message: 'image element script failed' },
  IMAGE_TOOL_MISSING: { status: GrpcStatus.FAILED_PRECONDITION, message: 'a tool or input the image build needs is missing' },
  IMAGE_BUILD_FAILED: { status: GrpcStatus.INTERNAL, message: 'image build failed' },

  // Inspection rules and profiles (issue 8)
  RULE_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'inspection rule rejected' },
  RULE_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, message: 'inspection rule not found' },
  RULE_EXISTS: { status: GrpcStatus.ALREADY_EXISTS, message: 'an inspection rule with this uuid already exists' },

  // Config drive (issue 11): built by ospd, written by the ramdisk agent as the disk's last partition
  CONFIG_DRIVE_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'config drive input rejected' },
  CONFIG_DRIVE_TOOL_MISSING: { status: GrpcStatus.FAILED_PRECONDITION, message: 'a tool the config drive needs is missing' },
  CONFIG_DRIVE_PARTITION_REFUSED: { status: GrpcStatus.FAILED_PRECONDITION, message: 'no place for the config drive partition on the disk' },

  // Images in ospd (issue 11)
  IMAGE_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, message: 'image not found' },
  IMAGE_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'image refused' },
  IMAGE_EXISTS: { status: GrpcStatus.ALREADY_EXISTS, message: 'an image with this name and other content already exists' },
  IMAGE_IN_USE: { status: GrpcStatus.FAILED_PRECONDITION, message: 'image is in use by nodes' },
  IMAGE_TOO_LARGE: { status: GrpcStatus.INVALID_ARGUMENT, message: 'image larger than the per-image limit' },
  IMAGE_NO_SPACE: { status: GrpcStatus.RESOURCE_EXHAUSTED, message: 'not enough free space for the image' },
  IMAGE_BUSY: { status: GrpcStatus.ABORTED, message: 'another upload of this image is in progress' },

  // Provisioning: the agent's image writer (issue 11)
  EXTENTS_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'image extent map invalid' },
  IMAGE_CHECKSUM_MISMATCH: { status: GrpcStatus.DATA_LOSS, message: 'written image does not match its checksum' },
  IMAGE_FETCH_FAILED: { status: GrpcStatus.UNAVAILABLE, message: 'image download failed' },
  DEPLOY_TARGET_INVALID: { status: GrpcStatus.FAILED_PRECONDITION, message: 'deploy target device unusable' },
  DEPLOY_TARGET_TOO_SMALL: { status: GrpcStatus.FAILED_PRECONDITION, message: 'image larger than the target disk' },

  // Orchestration (issue 12): HOT templates and environments
  TEMPLATE_INVALID: { status: GrpcStatus.INVALID_ARGUMENT, message: 'template or environment rejected' },
  TEMPLATE_BUNDLE_TOO_LARGE: { status: GrpcStatus.INVALID_ARGUMENT, message: 'template bundle larger than the limit' },
  // Orchestration (issue 12): stacks
  STACK_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, message: 'stack not found' },
  STACK_EXISTS: { status: GrpcStatus.ALREADY_EXISTS, message: 'a stack with this name already exists' },
  STACK_IN_PROGRESS: { status: GrpcStatus.FAILED_PRECONDITION, message: 'another operation is in progress on the stack' },
} as const;

export type ErrorCode = keyof typeof catalogue;

export function isErrorCode(v: string): v is ErrorCode {
  return Object.hasOwn(catalogue, v);
}

/** The generic catalogue code of a gRPC status (for failures that carry no code of their own). */
export function codeForStatus(s: GrpcStatus): ErrorCode {
  const name = GrpcStatus[s];
  return name !== undefined && isErrorCode(name) ? name : 'UNKNOWN';
}

/**
 * One thing wrong with one part of a request. `field` is the path a program
 * reads (`nodes[1].mac`); `description` is the whole line an operator reads
 * (`nodes[1] (web-1): mac: "zz": expected a MAC address …`), so the error's
 * message is the descriptions joined by newlines.
 */
export interface Problem {
  field: string;
  description: string;
}

/**
 * The well-known parts of OspError.details; these travel to clients in the
 * gRPC rich error model (common/rich-status.ts). Other keys stay server-side.
 */
export interface ErrorDetails {
  /** The request field, config key or flag at fault. */
  field?: string;
  key?: string;
  value?: unknown;
  expected?: string;
  node?: string;
  state?: string;
  action?: string;
  /** Actions allowed in `state`. */
  allowed?: string[];
  rule?: string;
  source?: string;
  /** Every problem of a request refused whole (an import); strings name no field. */
  problems?: (Problem | string)[];
  [other: string]: unknown;
}

export class OspError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message?: string, details: ErrorDetails = {}) {
    super(message ?? catalogue[code].message);
    this.name = 'OspError';
    this.code = code;
    this.details = details;
  }

  get grpcStatus(): GrpcStatus {
    return catalogue[this.code].status;
  }
}

export function isOspError(e: unknown): e is OspError {
  return e instanceof OspError;
}

/** Metadata key carrying the stable error code on gRPC errors. */
export const ERROR_CODE_METADATA_KEY = 'osp-error-code';

/** A value as an error message quotes it: JSON, cut at `maxChars` so a large input does not flood the line. */
export function shownValue(v: unknown, maxChars = 60): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > maxChars ? `${s.slice(0, maxChars)}…` : s;
}
