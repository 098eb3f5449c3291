import { describe, it, expect } from 'vitest';
import { BmcSerializer, withRetry } from '../../server/bmc/pacing.js';
import { BmcError } from '../../server/bmc/types.js';

describe('per-BMC pacing', () => {
  it('never overlaps calls to one BMC and keeps the minimum gap, while other BMCs proceed', async () => {
    const s = new BmcSerializer(50);
    const log: [string, string, number][] = [];
    const job = (bmc: string) => s.run(bmc, async () => {
      log.push([bmc, 'start', Date.now()]);
      await new Promise((r) => setTimeout(r, 20));
      log.push([bmc, 'end', Date.now()]);
    });
    const t0 = Date.now();
    await Promise.all([job('a'), job('a'), job('a'), job('b')]);
    const a = log.filter((l) => l[0] === 'a');
    for (let i = 2; i < a.length; i += 2) expect(a[i][2] - a[i - 1][2]).toBeGreaterThanOrEqual(49);
    const bStart = log.find((l) => l[0] === 'b')![2];
    expect(bStart - t0).toBeLessThan(40);
  });

  it('retries only transient failures, a bounded number of times', async () => {
    let calls = 0;
    const transient = () => withRetry({ attempts: 3, backoffMs: 1, maxBackoffMs: 2 }, async () => { calls++; throw new BmcError('timeout', 'n', 'b', 'x'); });
    await expect(transient()).rejects.toThrow(/node n: BMC b/);
    expect(calls).toBe(3);
    calls = 0;
    await expect(withRetry({ attempts: 3, backoffMs: 1, maxBackoffMs: 2 }, async () => { calls++; throw new BmcError('auth', 'n', 'b', 'x'); })).rejects.toThrow();
    expect(calls).toBe(1);
  });
});
