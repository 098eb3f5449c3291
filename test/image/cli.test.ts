import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../image-builder/cli.js';
import { makeElementTree, removeElementTrees } from './element-tree.js';

afterAll(removeElementTrees);

function capture(): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => { out += String(c); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => { err += String(c); return true; });
  return { out: () => out, err: () => err };
}

describe('osp-image CLI', () => {
  const saved = process.env.ELEMENTS_PATH;
  afterEach(() => {
    vi.restoreAllMocks();
    process.env.ELEMENTS_PATH = saved;
  });

  it('list-elements shows ELEMENTS_PATH elements and the built-ins', async () => {
    process.env.ELEMENTS_PATH = makeElementTree({ 'my-site': {} });
    const c = capture();
    expect(await main(['node', 'osp-image', 'list-elements'])).toBe(0);
    const names = c.out().trim().split('\n');
    expect(names).toEqual(expect.arrayContaining(['my-site', 'ramdisk', 'osp-agent', 'vm', 'debian-minimal', 'growroot']));
  });

  it('show prints deps, resolved deps and phases', async () => {
    process.env.ELEMENTS_PATH = makeElementTree({ top: { 'element-deps': 'base', 'install.d/10-a': '#!/bin/sh\n' }, base: {} });
    const c = capture();
    expect(await main(['node', 'osp-image', 'show', 'top'])).toBe(0);
    const shown = JSON.parse(c.out());
    expect(shown).toMatchObject({ name: 'top', deps: ['base'], resolvedDeps: ['base', 'top'], phases: { 'install.d': ['10-a'] } });
  });

  it('rejects an unknown image type naming the accepted ones', async () => {
    const c = capture();
    expect(await main(['node', 'osp-image', 'build', '-o', '/tmp/x', '-t', 'iso', 'vm'])).toBe(1);
    expect(c.err()).toMatch(/-t\/--type: 'iso' is not valid, expected one of ramdisk, raw, qcow2/);
  });

  it('rejects a bad --break before building anything', async () => {
    const c = capture();
    expect(await main(['node', 'osp-image', 'build', '-o', '/tmp/x', '-t', 'ramdisk', '--break', 'before-lunch', 'ramdisk'])).toBe(1);
    expect(c.err()).toMatch(/--break: 'before-lunch' is not valid/);
  });
});
