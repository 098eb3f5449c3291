/**
 * Metrics retention as pure functions the store calls on a timer: samples
 * younger than the raw window are kept as they are, older ones are folded
 * into per-minute averages, and everything older than the maximum age goes.
 */

export interface MetricSample {
  tsMs: number;
  values: Record<string, number>;
}

export interface MinuteAverage {
  /** Start of the minute, Unix milliseconds. */
  minuteStartMs: number;
  values: Record<string, number>;
  /** Samples folded into this minute (needed to merge with earlier averages). */
  samples: number;
}

export interface RetentionPolicy {
  rawWindowMs: number;
  maxAgeMs: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { rawWindowMs: 6 * 3600_000, maxAgeMs: 30 * 24 * 3600_000 };

export function validateRetention(p: RetentionPolicy): void {
  if (!(p.rawWindowMs > 0)) throw new Error(`retention rawWindowMs is ${p.rawWindowMs}; expected a positive number of milliseconds`);
  if (!(p.maxAgeMs >= p.rawWindowMs)) throw new Error(`retention maxAgeMs is ${p.maxAgeMs}; expected at least rawWindowMs (${p.rawWindowMs})`);
}

export interface RetentionPlan {
  /** Samples to keep raw. */
  keepRaw: MetricSample[];
  /** New per-minute averages replacing the samples that left the raw window. */
  downsampled: MinuteAverage[];
  /** Delete raw samples with tsMs below this, and averages with minuteStartMs below `expireBeforeMs`. */
  rawBeforeMs: number;
  expireBeforeMs: number;
}

const MINUTE_MS = 60_000;

/** Averages per key per minute; a key missing from some samples is averaged over the samples that have it. */
export function downsampleToMinutes(samples: MetricSample[]): MinuteAverage[] {
  const minutes = new Map<number, { sums: Record<string, number>; counts: Record<string, number>; samples: number }>();
  for (const s of samples) {
    const start = Math.floor(s.tsMs / MINUTE_MS) * MINUTE_MS;
    let m = minutes.get(start);
    if (!m) minutes.set(start, (m = { sums: {}, counts: {}, samples: 0 }));
    m.samples++;
    for (const [k, v] of Object.entries(s.values)) {
      m.sums[k] = (m.sums[k] ?? 0) + v;
      m.counts[k] = (m.counts[k] ?? 0) + 1;
    }
  }
  return [...minutes.entries()]
    .sort(([a], [b]) => a - b)
    .map(([minuteStartMs, m]) => ({
      minuteStartMs,
      samples: m.samples,
      values: Object.fromEntries(Object.keys(m.sums).map((k) => [k, m.sums[k] / m.counts[k]])),
    }));
}

/** Merges two averages of the same minute, weighting by sample count. */
export function mergeMinute(a: MinuteAverage, b: MinuteAverage): MinuteAverage {
  if (a.minuteStartMs !== b.minuteStartMs) throw new Error(`cannot merge minute ${a.minuteStartMs} with ${b.minuteStartMs}`);
  const values: Record<string, number> = {};
  for (const k of new Set([...Object.keys(a.values), ...Object.keys(b.values)])) {
    if (!(k in a.values)) values[k] = b.values[k];
    else if (!(k in b.values)) values[k] = a.values[k];
    else values[k] = (a.values[k] * a.samples + b.values[k] * b.samples) / (a.samples + b.samples);
  }
  return { minuteStartMs: a.minuteStartMs, values, samples: a.samples + b.samples };
}

/**
 * Given the raw samples currently stored, what to keep and what to fold.
 * The raw window boundary is aligned down to a whole minute so that a minute
 * is never split between raw and averaged rows.
 */
export function planRetention(raw: MetricSample[], nowMs: number, policy: RetentionPolicy = DEFAULT_RETENTION): RetentionPlan {
  validateRetention(policy);
  const rawBeforeMs = Math.floor((nowMs - policy.rawWindowMs) / MINUTE_MS) * MINUTE_MS;
  const expireBeforeMs = nowMs - policy.maxAgeMs;
  const keepRaw: MetricSample[] = [];
  const old: MetricSample[] = [];
  for (const s of raw) {
    if (s.tsMs >= rawBeforeMs) keepRaw.push(s);
    else if (s.tsMs >= expireBeforeMs) old.push(s);
  }
  return { keepRaw, downsampled: downsampleToMinutes(old), rawBeforeMs, expireBeforeMs };
}
