import { ResourceFailure, type ResourcePlugin } from '../engine/contract.js';

export interface WaitSignal { status: 'SUCCESS' | 'FAILURE' | string; reason: string; data: unknown }

/** How a WaitCondition reads its handle's signals (the engine stores them with the handle). */
export interface WaitSignals {
  read(handleRef: string): Promise<Record<string, WaitSignal>>;
  /** Resolves at the handle's next signal, after `timeoutMs`, or when `signal` aborts. */
  next(handleRef: string, timeoutMs: number, signal: AbortSignal): Promise<void>;
}

/**
 * OS::Heat::WaitConditionHandle: a place for signals (`engine.signal`, from
 * an agent or ospctl). Its reference names it for the WaitCondition's `handle`.
 */
export const waitConditionHandleResource: ResourcePlugin<{ ref: string; signals: Record<string, WaitSignal> }> = {
  type: 'OS::Heat::WaitConditionHandle',
  attributes: [],
  replaceOn: [],
  createIdempotent: true,
  async create(ctx) { return { ref: `${ctx.stack.id}:${ctx.name}`, signals: {} }; },
  async update(_ctx, data) { return data; },
  async delete() { /* the signals go with the row */ },
  reference: (d) => d.ref,
  attribute: () => undefined,
};

type WaitData = { handle: string; count: number; timeoutSec: number; startedAtMs: number; signals?: Record<string, WaitSignal> };

/**
 * OS::Heat::WaitCondition: complete once its handle has `count` SUCCESS
 * signals; failed at the first FAILURE or after `timeout` seconds. After a
 * restart it keeps its original start, so the timeout is not extended.
 */
export function waitConditionResource(signals: WaitSignals): ResourcePlugin<WaitData> {
  return {
    type: 'OS::Heat::WaitCondition',
    attributes: ['data'],
    replaceOn: '*',
    createIdempotent: true,
    validate(p) {
      const problems: string[] = [];
      if (typeof p.handle !== 'string' || !p.handle.includes(':')) problems.push(`property 'handle': ${JSON.stringify(p.handle)}: expected {get_resource: <an OS::Heat::WaitConditionHandle>}`);
      const c = p.count ?? 1;
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 1) problems.push(`property 'count': ${JSON.stringify(p.count)}: expected an integer ≥ 1`);
      const t = p.timeout;
      if (typeof t !== 'number' || !(t > 0)) problems.push(`property 'timeout': ${JSON.stringify(t)}: expected a number of seconds > 0`);
      return problems;
    },
    async create(_ctx, p) {
      return { handle: String(p.handle), count: Number(p.count ?? 1), timeoutSec: Number(p.timeout), startedAtMs: Date.now() };
    },
    async ready(ctx, data) {
      for (;;) {
        const got = await signals.read(data.handle);
        const failed = Object.values(got).find((s) => s.status === 'FAILURE');
        if (failed) throw new ResourceFailure(`WaitCondition: FAILURE signal: ${failed.reason}`);
        const ok = Object.values(got).filter((s) => s.status === 'SUCCESS').length;
        if (ok >= data.count) return { ...data, signals: got };
        const leftMs = data.startedAtMs + data.timeoutSec * 1000 - Date.now();
        if (leftMs <= 0) throw new ResourceFailure(`WaitCondition timed out after ${data.timeoutSec} s (${ok} of ${data.count} signals)`);
        if (ctx.signal.aborted) throw ctx.signal.reason;
        await signals.next(data.handle, leftMs, ctx.signal);
      }
    },
    async update(_ctx, data) { return data; },
    async delete() { /* nothing outside ospd */ },
    reference: (d) => d.handle,
    attribute: (d, name) => (name === 'data' ? JSON.stringify(Object.fromEntries(Object.entries(d.signals ?? {}).map(([k, s]) => [k, s.data]))) : undefined),
  };
}
