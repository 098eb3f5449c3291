import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OSP_VERSION } from '../../common/version.js';

describe('version', () => {
  it('is the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(OSP_VERSION).toBe(pkg.version);
  });
});
