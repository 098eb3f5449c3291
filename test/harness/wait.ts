import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  timeoutMs: number;
  /** Pause between probes; default 100 ms. */
  intervalMs?: number;
  /** Context appended to the timeout message (a log tail, a console). */
  detail?: () => string;
  /** Treat a probe that throws as "not yet" (a server still starting); by default the error ends the wait. */
  retryErrors?: boolean;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

function shown(v: unknown): string {
  if (v instanceof Error) return `error: ${v.message}`;
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

/**
 * Probes until it yields a truthy value and returns that value. Bounded in time
 * (timeoutMs) and so in count (timeoutMs / intervalMs + 1 probes); on timeout
 * the error names what was awaited and the last value the probe gave.
 */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, opts: WaitOptions): Promise<Truthy<T>> {
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + opts.timeoutMs;
  const maxProbes = Math.ceil(opts.timeoutMs / intervalMs) + 1;
  let last: unknown;
  for (let i = 0; i < maxProbes; i++) {
    try {
      last = await probe();
      if (last) return last as Truthy<T>;
    } catch (e) {
      if (!opts.retryErrors) throw e;
      last = e;
    }
    const leftMs = deadline - Date.now();
    if (leftMs <= 0) break;
    await sleep(Math.min(intervalMs, leftMs));
  }
  const detail = opts.detail ? `\n${opts.detail()}` : '';
  throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what} (last: ${shown(last)})${detail}`);
}
