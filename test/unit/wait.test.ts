import { describe, expect, it } from 'vitest';
import { waitFor } from '../harness/wait.js';

describe('waitFor', () => {
  it('returns the first truthy value the probe gives', async () => {
    let n = 0;
    expect(await waitFor('n to reach 3', () => (++n >= 3 ? { n } : undefined), { timeoutMs: 1000, intervalMs: 1 })).toEqual({ n: 3 });
  });

  it('gives up after timeoutMs, naming what it awaited and the last value seen', async () => {
    let probes = 0;
    const t0 = Date.now();
    await expect(waitFor('the moon', () => { probes++; return 0; }, { timeoutMs: 100, intervalMs: 10, detail: () => 'sky: cloudy' }))
      .rejects.toThrow(/^timed out after 100 ms waiting for the moon \(last: 0\)\nsky: cloudy$/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
    expect(probes).toBeLessThanOrEqual(11);
  });

  it('ends on a probe error unless told to retry, then reports the last error', async () => {
    await expect(waitFor('x', () => { throw new Error('boom'); }, { timeoutMs: 1000 })).rejects.toThrow(/^boom$/);
    let n = 0;
    expect(await waitFor('x', () => { if (++n < 3) throw new Error('not yet'); return 'ok'; }, { timeoutMs: 1000, intervalMs: 1, retryErrors: true })).toBe('ok');
    await expect(waitFor('y', () => { throw new Error('still down'); }, { timeoutMs: 30, intervalMs: 5, retryErrors: true }))
      .rejects.toThrow('waiting for y (last: error: still down)');
  });
});
