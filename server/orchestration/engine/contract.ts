import type { Logger } from '../../../common/logging.js';

/**
 * The two seams of the orchestration engine (issue 12), fixed first so the
 * engine, its resource types and its API can be built side by side:
 *
 * - `ResourcePlugin`: what one resource type does (Heat's handle_create /
 *   check_create_complete / handle_update / handle_delete, in one object).
 *   The engine keeps a registry of them keyed by type name. The overcloud's
 *   bare-metal server type implements it too.
 * - `StackOperations`: what the API layer (gRPC StackService, ospctl, MQTT
 *   stack events) asks of the engine. Domain code; it never imports server/api.
 *
 * Names follow Heat: statuses are `<ACTION>_<STATE>`, resources are addressed
 * by name within their stack, nested stacks by a path `top/Res/0`.
 */

export const STACK_ACTIONS = ['CREATE', 'UPDATE', 'DELETE', 'CHECK'] as const;
export type StackAction = (typeof STACK_ACTIONS)[number];
export const ACTION_STATES = ['IN_PROGRESS', 'COMPLETE', 'FAILED'] as const;
export type ActionState = (typeof ACTION_STATES)[number];
/** `CREATE_IN_PROGRESS` … `CHECK_FAILED`; a resource not yet touched is `INIT_COMPLETE`, as in Heat. */
export type HeatStatus = `${StackAction}_${ActionState}` | 'INIT_COMPLETE';

/** What a plugin keeps between calls; stored as JSON with the resource. Keys in `secretKeys` are sealed at rest and masked in answers. */
export type ResourceData = Record<string, unknown>;

/** A resource's own failure, with the words an operator needs; `details` travel to clients as structured data. */
export class ResourceFailure extends Error {
  constructor(message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ResourceFailure';
  }
}

export interface ResourceContext {
  /** The stack the resource belongs to; `path` names nested stacks (`overcloud/Compute/0`). */
  stack: { id: string; name: string; path: string };
  /** The resource's name in its stack. */
  name: string;
  /** Who asked for the operation (the admin principal or a test's name). */
  actor: string;
  /** Aborted when the stack's timeout passes, the operation is cancelled, or ospd stops. Long waits must honour it. */
  signal: AbortSignal;
  /** Epoch ms by which this resource must finish (the stack's timeout, or the plugin's own, whichever is sooner). */
  deadlineAt: number;
  log: Logger;
  /** A line for the resource's status reason and an event ("waiting for node-3 to apply revision 12"). */
  progress(reason: string): void;
  /** Nested stacks, for ResourceGroup and template resources (engine-internal plugins only). */
  nested?: NestedStacks;
}

/** The engine's handle on a child stack, given to the plugins that own one. */
export interface NestedStacks {
  /**
   * Creates or updates the child stack `<parent path>/<resource>` from a template in the parent's bundle; resolves when it completes.
   * `path` is a bundle path; a generated template (`text`) is placed there, so put it in `templatePath`'s folder for relative type names to resolve as in the parent.
   */
  apply(childTemplate: { path: string } | { text: string; path: string }, parameters: Record<string, unknown>, signal: AbortSignal): Promise<NestedStackView>;
  /** The parent stack's template, as a bundle path. */
  readonly templatePath: string;
  /** For a template resource: its own template's bundle path (the resource's type after the registry). */
  readonly typeTemplate?: string;
  /** Deletes the child stack, if any. */
  remove(signal: AbortSignal): Promise<void>;
  /** The child as stored (undefined when it does not exist). */
  get(): Promise<NestedStackView | undefined>;
  /** Heat's CHECK of the child stack's resources (the child becomes CHECK_COMPLETE or CHECK_FAILED); throws ResourceFailure naming the failed ones. */
  check(signal: AbortSignal): Promise<void>;
}

export interface NestedStackView {
  id: string;
  path: string;
  outputs: Record<string, unknown>;
  /** Each resource's reference and attributes, for `refs`, `refs_map`, `attributes`, `resource.N.attr`. */
  resources: Map<string, { reference: string; attribute(name: string): unknown; attributePath?(name: string | undefined, path: (string | number)[]): unknown }>;
}

export interface ResourcePlugin<D extends ResourceData = ResourceData> {
  readonly type: string;
  /** Declared attributes (get_attr of another is a validation error); 'any' for types whose outputs are declared by the template. */
  readonly attributes: readonly string[] | 'any';
  /** Properties whose change needs a new resource (delete + create); '*' when every change does. Others update in place. */
  readonly replaceOn: readonly string[] | '*';
  /** Keys of the resource's data that hold secrets (RandomString's value). */
  readonly secretKeys?: readonly string[];
  /** The plugin's own bound on one create/update/delete, under the stack's timeout. */
  readonly timeoutMs?: number;
  /** Problems with the resolved properties, one line each (`property 'count': -1: expected a number ≥ 0`); [] when fine. */
  validate?(properties: Record<string, unknown>): string[];
  /**
   * Starts the resource and returns what must survive a restart; the engine
   * stores it (CREATE_IN_PROGRESS) before it calls `ready`.
   */
  create(ctx: ResourceContext, properties: Record<string, unknown>): Promise<D>;
  /**
   * Resolves with the final data once the resource is complete; throws
   * ResourceFailure when it failed. After an ospd restart the engine calls it
   * again with the stored data (re-observing, not redoing). Omitted: create's data is final.
   */
  ready?(ctx: ResourceContext, data: D): Promise<D>;
  /** In-place update; the engine calls `ready` after it as after create. */
  update(ctx: ResourceContext, data: D, properties: Record<string, unknown>, previous: Record<string, unknown>): Promise<D>;
  /** Idempotent; `data` is undefined when create never stored anything. */
  delete(ctx: ResourceContext, data: D | undefined): Promise<void>;
  /**
   * True when calling create again after an ospd restart cut it before its data was stored is harmless
   * (it converges rather than duplicates). Otherwise such a resource fails with "ospd restarted mid-operation".
   */
  readonly createIdempotent?: boolean;
  /**
   * For plug-ins that own a nested stack (engine-internal): get_attr answered from the child stack.
   * `name` undefined asks for every attribute; the plug-in applies `path` itself. Used instead of `attribute` when present.
   */
  nestedAttribute?(data: D, name: string | undefined, path: (string | number)[], child: NestedStackView | undefined): unknown;
  /** Heat's CHECK: throws ResourceFailure when the resource is not as stored. */
  check?(ctx: ResourceContext, data: D): Promise<void>;
  /** The value of get_resource (Heat's physical resource id). */
  reference(data: D): string;
  /** get_attr; undefined for an attribute the resource does not have. */
  attribute(data: D, name: string): unknown;
}

// ---- What the API layer asks of the engine ---------------------------------

/** A stack request as it arrives: the operator's files travel with it (ospd never reads their filesystem). */
export interface StackRequest {
  name: string;
  /** Path → content, as `ospctl` bundled them (relative paths, no `..`). */
  files: Record<string, Buffer | string>;
  template: string;
  environments: string[];
  /** `--parameter K=V`, strings converted by each parameter's type. */
  parameters: Record<string, string>;
  /** Heat's stack timeout in minutes; 0 or undefined: the engine's default. */
  timeoutMins?: number;
  dryRun?: boolean;
  actor: string;
}

export interface StackSummary {
  id: string;
  name: string;
  status: HeatStatus;
  statusReason: string;
  resourcesTotal: number;
  resourcesComplete: number;
  timeoutMins: number;
  createdAt: string;
  updatedAt: string;
}

export interface StackDetail extends StackSummary {
  description: string;
  /** Hidden parameters are masked ('******'). */
  parameters: Record<string, unknown>;
  outputs: StackOutput[];
}

export interface StackOutput {
  name: string;
  description: string;
  value?: unknown;
  /** Why the value could not be computed (a failed resource, say). */
  error?: string;
}

export interface ResourceView {
  name: string;
  type: string;
  /** `top`, `top/Compute`, `top/Compute/0`: the stack the resource is in. */
  stackPath: string;
  physicalId: string;
  status: HeatStatus;
  statusReason: string;
  updatedAt: string;
  requiredBy: string[];
}

export interface ResourceDetail extends ResourceView {
  /** Resolved properties and attributes, secrets masked. */
  properties: Record<string, unknown>;
  attributes: Record<string, unknown>;
}

export interface StackEvent {
  /** Increasing per stack; `after` pages and follows with it. */
  id: number;
  stack: string;
  stackPath: string;
  /** The resource, or the stack's own name for stack-level events. */
  resource: string;
  physicalId: string;
  status: HeatStatus;
  statusReason: string;
  at: string;
}

/** What create/update with `dryRun` would do, and changed nothing. */
export interface StackPlan {
  create: string[];
  update: string[];
  replace: string[];
  delete: string[];
  unchanged: string[];
}

/** A failed software deployment, for `ospctl stack failures`. */
export interface DeploymentFailure {
  stackPath: string;
  resource: string;
  node: string;
  config: string;
  statusCode: number;
  stderrTail: string;
  statusReason: string;
}

export interface StackOperations {
  /** Throws OspError TEMPLATE_INVALID with every problem; returns what the stack would hold. */
  validate(req: StackRequest): Promise<{ parameters: Record<string, unknown>; resources: { name: string; type: string }[]; notes: string[] }>;
  /** Starts the operation and returns at once (STACK_EXISTS when the name is taken); the plan instead when `dryRun`. */
  create(req: StackRequest): Promise<StackSummary | StackPlan>;
  /** STACK_IN_PROGRESS (naming the operation) when another operation runs on the stack. */
  update(req: StackRequest): Promise<StackSummary | StackPlan>;
  delete(name: string, actor: string): Promise<StackSummary>;
  /**
   * Heat's stack CHECK: starts checking every resource of the tree (nested stacks included) and returns at once.
   * Each resource becomes CHECK_COMPLETE or CHECK_FAILED, the stack likewise; nothing is changed. STACK_IN_PROGRESS as update.
   */
  check(name: string, actor: string): Promise<StackSummary>;
  list(page: { limit?: number; marker?: string }): Promise<{ stacks: StackSummary[]; nextMarker: string }>;
  get(name: string): Promise<StackDetail>;
  resources(name: string, nestedDepth: number): Promise<ResourceView[]>;
  resource(name: string, resource: string): Promise<ResourceDetail>;
  events(name: string, page: { after?: number; limit?: number }): Promise<StackEvent[]>;
  /** Every event of every stack as it is committed (for `--follow` and MQTT); returns the unsubscribe function. */
  onEvent(fn: (e: StackEvent) => void): () => void;
  failures(name: string): Promise<DeploymentFailure[]>;
}
