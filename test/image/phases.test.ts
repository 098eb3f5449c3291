import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../common/logging.js';
import { ElementLibrary, PHASES } from '../../image-builder/elements.js';
import { resolveElements } from '../../image-builder/resolve.js';
import { PhaseRunner, parseBreakpoint } from '../../image-builder/phases.js';
import { mountsUnder } from '../../image-builder/chroot-mounts.js';
import { installBinaryWithLibraries } from '../../image-builder/shared-libs.js';
import { makeElementTree, removeElementTrees } from './element-tree.js';

const cleanup: string[] = [];
afterAll(() => {
  removeElementTrees();
  for (const d of cleanup) if (mountsUnder(d).length === 0) rmSync(d, { recursive: true, force: true });
});

/** A chroot-able root holding only the host's /bin/sh, cat and mkdir with their libraries. */
async function tinyRoot(): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'osp-image-root-'));
  cleanup.push(root);
  await installBinaryWithLibraries(root, '/bin/sh');
  await installBinaryWithLibraries(root, '/bin/cat');
  return root;
}

function runner(requested: string[], tree: string, root: string) {
  const { ordered } = resolveElements(requested, new ElementLibrary([tree]));
  const work = mkdtempSync(join(tmpdir(), 'osp-image-work-'));
  cleanup.push(work);
  return new PhaseRunner({ elements: ordered, targetRoot: root, workDir: work, env: { OSP_TEST_LOG: '/log' }, logger: silentLogger() });
}

const append = (tag: string) => `#!/bin/sh\necho "${tag} $GREETING" >> "\${TARGET_ROOT:-}/log"\n`;

describe('phase runner', () => {
  it('runs every phase in dib order, scripts of all elements sorted by name, environment.d sourced', async () => {
    const spec: Record<string, string> = { 'environment.d/10-greet': 'export GREETING=hello\n' };
    PHASES.forEach((p) => { spec[`${p}/50-${p.replace('.d', '')}`] = append(`a:${p}`); });
    const tree = makeElementTree({
      a: spec,
      b: { 'element-deps': 'a', 'install.d/10-early': append('b:install.d'), 'install.d/README': 'not a hook' },
    });
    const root = await tinyRoot();
    await runner(['b'], tree, root).runAll();
    const lines = readFileSync(join(root, 'log'), 'utf8').trim().split('\n');
    expect(lines).toEqual([
      'a:root.d hello', 'a:extra-data.d hello', 'a:pre-install.d hello',
      'b:install.d hello', 'a:install.d hello', 'a:post-install.d hello',
      'a:block-device.d hello', 'a:finalise.d hello', 'a:cleanup.d hello',
    ]);
    expect(mountsUnder(root)).toEqual([]);
  });

  it('sees /proc inside chrooted phases', async () => {
    const tree = makeElementTree({ p: { 'install.d/10-proc': '#!/bin/sh\ncat /proc/self/stat > /stat\n' } });
    const root = await tinyRoot();
    await runner(['p'], tree, root).runAll();
    expect(readFileSync(join(root, 'stat'), 'utf8')).toMatch(/^\d+ \(cat\)/);
    expect(mountsUnder(root)).toEqual([]);
  });

  it('stops at a failing chrooted script naming element, phase, script and exit code, leaving no mounts', async () => {
    const tree = makeElementTree({
      bad: {
        'install.d/20-fails': '#!/bin/sh\necho boom >&2\nexit 7\n',
        'install.d/30-never': '#!/bin/sh\necho ran > /never\n',
      },
    });
    const root = await tinyRoot();
    await expect(runner(['bad'], tree, root).runAll())
      .rejects.toThrow(/element 'bad' phase 'install.d' script '20-fails' exited with code 7: boom/);
    expect(existsSync(join(root, 'never'))).toBe(false);
    expect(mountsUnder(root)).toEqual([]);
    expect(existsSync(join(root, 'tmp/osp-image-hooks'))).toBe(false);
  });

  it('fails a host-side phase when an environment.d file fails', async () => {
    const tree = makeElementTree({ e: { 'environment.d/10-bad': 'false\n', 'root.d/10-x': '#!/bin/sh\ntrue\n' } });
    const root = await tinyRoot();
    await expect(runner(['e'], tree, root).runAll()).rejects.toThrow(/element 'e' phase 'root.d' script '10-x' exited with code 1/);
  });

  it('parses --break values and rejects unknown phases', () => {
    expect(parseBreakpoint('before-install.d')).toEqual({ when: 'before', phase: 'install.d' });
    expect(() => parseBreakpoint('during-install.d')).toThrow(/--break: 'during-install.d' is not valid, expected before-PHASE/);
    expect(() => parseBreakpoint('after-bogus.d')).toThrow(/PHASE one of root.d/);
  });
});
