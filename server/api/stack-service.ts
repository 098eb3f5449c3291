import { status, type ServerWritableStream } from '@grpc/grpc-js';
import { OspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import {
  SignalStatus, StackServiceService, type StackServiceServer, type WatchStackEventsRequest, type WatchStackEventsResponse,
} from '../../proto/gen/osp/v1/stack.js';
import { DEFAULT_BUNDLE_LIMITS } from '../orchestration/hot/bundle.js';
import type { StackEvent, StackOperations, StackPlan, StackRequest, StackSummary } from '../orchestration/engine/contract.js';
import { serverStream, unary, type Authenticator, type CallContext } from './call.js';
import { MINUTE_MS, toJsonMap, toProtoFailure, toProtoPlan, toProtoResource, toProtoStack, toProtoStackEvent } from './stack-mappers.js';
import type { GrpcService } from './server.js';

/** The WaitConditionHandle signal; not part of the engine's contract, so ospd passes it on its own. */
export type SignalStack = (stack: string, resource: string, s: { status: string; reason: string; data: string; id: string }) => Promise<void>;

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
/** A watcher that reads slower than this much backlog is cut off (it resumes with its last event's id as marker). */
const MAX_STREAM_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * A request may carry a whole bundle: the engine's total limit plus room for
 * the paths, parameters and framing, so an over-limit bundle meets the
 * engine's TEMPLATE_BUNDLE_TOO_LARGE (which names the limit) rather than
 * gRPC's bare RESOURCE_EXHAUSTED.
 */
export const STACK_MAX_REQUEST_BYTES = DEFAULT_BUNDLE_LIMITS.maxTotalBytes + 4 * 1024 * 1024;

function required(field: string, value: string): string {
  if (!value) throw new OspError('INVALID_ARGUMENT', `${field}: empty; expected a name`, { field, value, expected: 'a non-empty name' });
  return value;
}

function timeoutMins(ms: number): number | undefined {
  if (ms === 0) return undefined;
  if (ms < 0 || ms % MINUTE_MS !== 0) {
    throw new OspError('INVALID_ARGUMENT', `timeout_ms: ${ms}: expected whole minutes (a positive multiple of 60000), or 0 for ospd's default`, {
      field: 'timeout_ms', value: ms, expected: 'a positive multiple of 60000, or 0',
    });
  }
  return ms / MINUTE_MS;
}

/** An event id given as a marker; empty means from the start. */
function eventMarker(field: string, marker: string): number | undefined {
  if (marker === '') return undefined;
  if (!/^\d{1,15}$/.test(marker)) {
    throw new OspError('INVALID_ARGUMENT', `${field}: ${JSON.stringify(marker)}: expected an event id (a whole number) or empty`, { field, value: marker, expected: 'an event id' });
  }
  return Number(marker);
}

const pageSize = (limit: number) => Math.min(limit || DEFAULT_PAGE, MAX_PAGE);

/** A page of a list the engine answers whole; the marker is the last item's key. */
function pageOf<T>(items: T[], key: (t: T) => string, limit: number, marker: string): { page: T[]; nextMarker: string } {
  let start = 0;
  if (marker) {
    const i = items.findIndex((t) => key(t) === marker);
    if (i < 0) throw new OspError('INVALID_ARGUMENT', `marker: ${JSON.stringify(marker)} is not in the list (it changed, or the marker is not from it)`, { field: 'marker', value: marker, expected: 'a next_marker from the previous page' });
    start = i + 1;
  }
  const page = items.slice(start, start + pageSize(limit));
  const more = start + page.length < items.length;
  return { page, nextMarker: more && page.length ? key(page[page.length - 1]) : '' };
}

interface BundleFields {
  stack: string;
  files: Record<string, Buffer>;
  template: string;
  environments: string[];
  parameters: Record<string, string>;
}

function stackRequest(req: BundleFields & { timeoutMs?: number; dryRun?: boolean }, ctx: CallContext): StackRequest {
  return {
    name: required('stack', req.stack), files: req.files, template: required('template', req.template), environments: req.environments,
    parameters: req.parameters, timeoutMins: timeoutMins(req.timeoutMs ?? 0), dryRun: req.dryRun ?? false, actor: ctx.caller.name,
  };
}

function planOrStack(r: StackSummary | StackPlan) {
  return 'unchanged' in r ? { plan: toProtoPlan(r) } : { stack: toProtoStack(r) };
}

function signalStatus(s: SignalStatus): string {
  if (s === SignalStatus.SIGNAL_STATUS_FAILURE) return 'FAILURE';
  if (s === SignalStatus.SIGNAL_STATUS_SUCCESS || s === SignalStatus.SIGNAL_STATUS_UNSPECIFIED) return 'SUCCESS';
  throw new OspError('INVALID_ARGUMENT', `status: ${s}: expected SUCCESS or FAILURE`, { field: 'status', value: s, expected: 'SUCCESS or FAILURE' });
}

/** StackService: Heat stacks through the orchestration engine. */
export function stackService(ops: StackOperations, signal: SignalStack, auth: Authenticator, log: Logger): GrpcService {
  const watches = new Set<ServerWritableStream<WatchStackEventsRequest, WatchStackEventsResponse>>();

  const watch = async (call: ServerWritableStream<WatchStackEventsRequest, WatchStackEventsResponse>, ctx: CallContext) => {
    const name = required('stack', call.request.stack);
    let last = eventMarker('marker', call.request.marker) ?? 0;
    const mine = (e: StackEvent) => e.stack === name || e.stackPath === name;
    // Subscribed before the backlog is read, so an event committed in between is held, not lost.
    let held: StackEvent[] | undefined = [];
    let cut = false;
    const send = (e: StackEvent) => {
      if (e.id <= last || cut) return;
      last = e.id;
      if (call.writableLength > MAX_STREAM_BUFFER_BYTES) {
        cut = true;
        call.emit('error', { code: status.RESOURCE_EXHAUSTED, details: `stack ${name}: the client reads events too slowly; watch again with marker ${last - 1}` });
        return;
      }
      call.write({ event: toProtoStackEvent(e) });
    };
    const off = ops.onEvent((e) => {
      if (!mine(e)) return;
      if (held) held.push(e);
      else send(e);
    });
    watches.add(call);
    const ended = new Promise<void>((resolve) => {
      for (const ev of ['cancelled', 'close', 'finish', 'error']) call.on(ev, () => resolve());
    });
    try {
      for (;;) {
        const page = await ops.events(name, { after: last, limit: MAX_PAGE });
        page.forEach(send);
        if (page.length < MAX_PAGE || cut) break;
      }
      for (const e of held) send(e);
      held = undefined;
      ctx.log.debug({ stack: name, after: last }, 'stack event watch: backlog sent, following');
      await ended;
    } finally {
      off();
      watches.delete(call);
    }
  };

  const impl: StackServiceServer = {
    validateStack: unary(log, 'ValidateStack', auth, async (req, ctx) => {
      const r = await ops.validate(stackRequest(req, ctx));
      return {
        parametersJson: toJsonMap(r.parameters),
        resources: r.resources, notes: r.notes,
      };
    }),
    createStack: unary(log, 'CreateStack', auth, async (req, ctx) => {
      const r = await ops.create(stackRequest(req, ctx));
      ctx.log.info({ stack: req.stack, dryRun: req.dryRun }, req.dryRun ? 'stack create planned' : 'stack create started');
      return planOrStack(r);
    }),
    updateStack: unary(log, 'UpdateStack', auth, async (req, ctx) => {
      const r = await ops.update(stackRequest(req, ctx));
      ctx.log.info({ stack: req.stack, dryRun: req.dryRun }, req.dryRun ? 'stack update planned' : 'stack update started');
      return planOrStack(r);
    }),
    deleteStack: unary(log, 'DeleteStack', auth, async (req, ctx) => {
      const r = await ops.delete(required('stack', req.stack), ctx.caller.name);
      ctx.log.info({ stack: req.stack }, 'stack delete started');
      return { stack: toProtoStack(r) };
    }),
    checkStack: unary(log, 'CheckStack', auth, async (req, ctx) => {
      const r = await ops.check(required('stack', req.stack), ctx.caller.name);
      ctx.log.info({ stack: req.stack }, 'stack check started');
      return { stack: toProtoStack(r) };
    }),
    listStacks: unary(log, 'ListStacks', auth, async (req) => {
      const r = await ops.list({ limit: pageSize(req.limit), marker: req.marker || undefined });
      return { stacks: r.stacks.map(toProtoStack), nextMarker: r.nextMarker };
    }),
    getStack: unary(log, 'GetStack', auth, async (req) => ({ stack: toProtoStack(await ops.get(required('stack', req.stack))) })),
    listStackResources: unary(log, 'ListStackResources', auth, async (req) => {
      const all = await ops.resources(required('stack', req.stack), req.nestedDepth);
      const { page, nextMarker } = pageOf(all, (r) => `${r.stackPath}/${r.name}`, req.limit, req.marker);
      return { resources: page.map(toProtoResource), nextMarker };
    }),
    getStackResource: unary(log, 'GetStackResource', auth, async (req) => ({
      resource: toProtoResource(await ops.resource(required('stack', req.stack), required('resource', req.resource))),
    })),
    listStackEvents: unary(log, 'ListStackEvents', auth, async (req) => {
      const limit = pageSize(req.limit);
      const events = await ops.events(required('stack', req.stack), { after: eventMarker('marker', req.marker), limit });
      return { events: events.map(toProtoStackEvent), nextMarker: events.length === limit ? String(events[events.length - 1].id) : '' };
    }),
    watchStackEvents: serverStream(log, 'WatchStackEvents', auth, watch),
    listStackFailures: unary(log, 'ListStackFailures', auth, async (req) => ({
      failures: (await ops.failures(required('stack', req.stack))).map(toProtoFailure),
    })),
    signalStack: unary(log, 'SignalStack', auth, async (req, ctx) => {
      const stack = required('stack', req.stack);
      const resource = required('resource', req.resource);
      const outcome = signalStatus(req.status);
      await signal(stack, resource, { status: outcome, reason: req.reason, data: req.data, id: req.id });
      ctx.log.info({ stack, resource, status: outcome }, 'stack signalled');
      return { stack, resource };
    }),
  };
  return {
    definition: StackServiceService, impl, maxRequestBytes: STACK_MAX_REQUEST_BYTES,
    closeStreams: () => {
      for (const c of watches) c.end();
      watches.clear();
    },
  };
}
