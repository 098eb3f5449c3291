import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { silentLogger } from '../../common/logging.js';
import { ImageBuilder } from '../../image-builder/builder.js';
import { mountsUnder } from '../../image-builder/chroot-mounts.js';
import { installBinaryWithLibraries } from '../../image-builder/shared-libs.js';
import { makeElementTree, removeElementTrees } from './element-tree.js';

const outDir = mkdtempSync(join(tmpdir(), 'osp-image-diskfail-'));
afterAll(() => {
  removeElementTrees();
  if (mountsUnder(outDir).length === 0) rmSync(outDir, { recursive: true, force: true });
});

function loopDevicesBackedBy(dir: string): string[] {
  const out = execFileSync('losetup', ['-l', '-n', '-O', 'NAME,BACK-FILE'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(resolve(dir)));
}

describe('whole-disk build failure', () => {
  it('names the failing finalise.d script and leaves no mounts, loop devices or partition nodes behind', async () => {
    const tiny = join(outDir, 'tiny-root');
    await installBinaryWithLibraries(tiny, '/bin/sh');
    await installBinaryWithLibraries(tiny, '/bin/cat');
    // A stand-in operating-system element: copies a two-binary root instead of debootstrapping.
    const tree = makeElementTree({
      'tiny-os': {
        'element-provides': 'operating-system',
        'root.d/10-tiny': '#!/bin/sh\nset -e\ncp -a "$OSP_TEST_TINY_ROOT/." "$TARGET_ROOT/"\n',
      },
      breaks: {
        'element-deps': 'tiny-os',
        'finalise.d/50-fails': '#!/bin/sh\ncat /proc/self/mounts > /dev/null\necho "disk $IMAGE_BLOCK_DEVICE root $DIB_ROOT_UUID" >&2\nexit 9\n',
      },
    });
    const b = new ImageBuilder({ logger: silentLogger(), elementsPath: tree, extraEnv: { OSP_TEST_TINY_ROOT: tiny } });
    const err = await b.build({ output: join(outDir, 'img'), type: 'raw', sizeGiB: 1, elements: ['breaks'], packages: [], arguments: [] })
      .then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/element 'breaks' phase 'finalise.d' script '50-fails' exited with code 9: disk \/dev\/loop\d+ root [0-9a-f-]{36}/);
    const loop = /disk (\/dev\/loop\d+)/.exec(err!.message)![1];
    expect(mountsUnder(outDir)).toEqual([]);
    expect(loopDevicesBackedBy(outDir)).toEqual([]);
    expect(existsSync(`${loop}p3`)).toBe(false);
    expect(readdirSync(outDir).filter((f) => f.startsWith('.osp-image-build-'))).toEqual([]);
  }, 120_000);
});
