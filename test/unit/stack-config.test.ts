import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../server/config.js';

describe('stack-concurrency', () => {
  it('defaults to 64 and takes a flag or file value', () => {
    expect(resolveConfig({}, {}).stacks.concurrency).toBe(64);
    expect(resolveConfig({ 'stack-concurrency': 16 }, {}).stacks.concurrency).toBe(16);
    expect(resolveConfig({ 'stack-concurrency': 16 }, { 'stack-concurrency': '200' }).stacks.concurrency).toBe(200);
  });

  it('refuses a value that is not a whole number from 1, naming the key', () => {
    for (const bad of ['0', '-3', 'many', '2.5']) {
      expect(() => resolveConfig({}, { 'stack-concurrency': bad })).toThrow(/stack-concurrency: ".*" is not valid: expected a whole number from 1 to 10000/);
    }
  });
});
