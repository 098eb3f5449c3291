import { BmcError, isRetryable } from './types.js';

export interface RetryPolicy {
  /** Attempts including the first; bounded so a dead BMC costs a known time. */
  attempts: number;
  backoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, backoffMs: 500, maxBackoffMs: 4000 };

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs fn again on transient BMC failures with exponential backoff. */
export async function withRetry<T>(policy: RetryPolicy, fn: () => Promise<T>): Promise<T> {
  let delayMs = policy.backoffMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= policy.attempts || !isRetryable(e)) throw e;
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, policy.maxBackoffMs);
    }
  }
}

/**
 * One queue per BMC: commands to the same BMC never overlap and keep a
 * minimum gap, because some BMCs crash when hammered (Ironic waits 5 s);
 * different BMCs proceed in parallel.
 */
export class BmcSerializer {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly lastEndMs = new Map<string, number>();

  constructor(private readonly minIntervalMs: number) {}

  run<T>(bmcKey: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(bmcKey) ?? Promise.resolve();
    const result = prev.then(async () => {
      const waitMs = (this.lastEndMs.get(bmcKey) ?? 0) + this.minIntervalMs - Date.now();
      if (waitMs > 0) await sleep(waitMs);
      try {
        return await fn();
      } finally {
        this.lastEndMs.set(bmcKey, Date.now());
      }
    });
    const tail = result.then(() => undefined, () => undefined);
    this.tails.set(bmcKey, tail);
    void tail.then(() => {
      if (this.tails.get(bmcKey) === tail) this.tails.delete(bmcKey);
    });
    return result;
  }
}

/** Polls until the BMC reports the wanted state; some BMCs report it late. */
export async function waitForPowerState<S>(
  read: () => Promise<S>, want: S, timeoutMs: number, intervalMs: number,
  onTimeout: (last: S | undefined) => BmcError,
): Promise<S> {
  const deadline = Date.now() + timeoutMs;
  let last: S | undefined;
  while (true) {
    last = await read();
    if (last === want) return last;
    if (Date.now() + intervalMs > deadline) throw onTimeout(last);
    await sleep(intervalMs);
  }
}
