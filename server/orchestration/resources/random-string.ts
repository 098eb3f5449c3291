import { randomInt } from 'node:crypto';
import { ResourceFailure, type ResourcePlugin } from '../engine/contract.js';

const CLASSES: Record<string, string> = {
  lettersdigits: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  letters: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
  lowercase: 'abcdefghijklmnopqrstuvwxyz',
  uppercase: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  digits: '0123456789',
  hexdigits: '0123456789ABCDEFabcdef',
  octdigits: '01234567',
};

interface Pool { chars: string; min: number }

function pools(p: Record<string, unknown>, problems: string[]): Pool[] {
  const out: Pool[] = [];
  const list = (key: string): unknown[] => {
    const v = p[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) { problems.push(`property '${key}': ${JSON.stringify(v)}: expected a list`); return []; }
    return v;
  };
  const min = (key: string, i: number, m: unknown): number => {
    if (m === undefined) return 1;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > 512) { problems.push(`property '${key}[${i}].min': ${JSON.stringify(m)}: expected an integer from 1 to 512`); return 1; }
    return m;
  };
  list('character_classes').forEach((c, i) => {
    const cls = (c as { class?: unknown })?.class ?? 'lettersdigits';
    if (typeof cls !== 'string' || !CLASSES[cls]) { problems.push(`property 'character_classes[${i}].class': ${JSON.stringify(cls)}: expected one of ${Object.keys(CLASSES).join(', ')}`); return; }
    out.push({ chars: CLASSES[cls], min: min('character_classes', i, (c as { min?: unknown }).min) });
  });
  list('character_sequences').forEach((c, i) => {
    const seq = (c as { sequence?: unknown })?.sequence;
    if (typeof seq !== 'string' || seq === '') { problems.push(`property 'character_sequences[${i}].sequence': ${JSON.stringify(seq)}: expected a non-empty string`); return; }
    out.push({ chars: seq, min: min('character_sequences', i, (c as { min?: unknown }).min) });
  });
  return out;
}

function length(p: Record<string, unknown>): number {
  return p.length === undefined ? 32 : Number(p.length);
}

/**
 * OS::Heat::RandomString as Heat makes it: each class or sequence gets its
 * `min` characters, the rest come from all of them together, then the whole
 * is shuffled. Without classes or sequences: letters and digits. The value
 * is a secret: sealed at rest, masked in every answer.
 */
export const randomStringResource: ResourcePlugin<{ value: string }> = {
  type: 'OS::Heat::RandomString',
  attributes: ['value'],
  replaceOn: '*',
  secretKeys: ['value'],
  createIdempotent: true,
  validate(p) {
    const problems: string[] = [];
    const n = length(p);
    if (!Number.isInteger(n) || n < 1 || n > 512) problems.push(`property 'length': ${JSON.stringify(p.length)}: expected an integer from 1 to 512`);
    if (p.salt !== undefined && typeof p.salt !== 'string') problems.push(`property 'salt': ${JSON.stringify(p.salt)}: expected a string`);
    const ps = pools(p, problems);
    const mins = ps.reduce((a, x) => a + x.min, 0);
    if (problems.length === 0 && mins > n) problems.push(`property 'length': ${n} is less than the sum of the minimums of character_classes and character_sequences (${mins})`);
    return problems;
  },
  async create(_ctx, p) {
    const ps = pools(p, []);
    const all = ps.length ? [...new Set(ps.map((x) => x.chars).join(''))].join('') : CLASSES.lettersdigits;
    const chars: string[] = [];
    for (const x of ps) for (let i = 0; i < x.min; i++) chars.push(x.chars[randomInt(x.chars.length)]);
    while (chars.length < length(p)) chars.push(all[randomInt(all.length)]);
    for (let i = chars.length - 1; i > 0; i--) { const j = randomInt(i + 1); [chars[i], chars[j]] = [chars[j], chars[i]]; }
    return { value: chars.join('') };
  },
  async update(_ctx, data) { return data; },
  async delete() { /* nothing outside ospd */ },
  // Nothing outside ospd: the value only has to be still there (its data could be unsealed).
  async check(_ctx, d) {
    if (typeof d.value !== 'string' || d.value === '') throw new ResourceFailure('the stored value is missing');
  },
  reference: (d) => d.value,
  attribute: (d, name) => (name === 'value' ? d.value : undefined),
};
