import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A small element tree on disk: name -> files (relative path -> content; scripts get +x). */
export type TreeSpec = Record<string, Record<string, string>>;

const made: string[] = [];

/** Deletes every tree made so far (call from afterAll). */
export function removeElementTrees(): void {
  while (made.length > 0) rmSync(made.pop()!, { recursive: true, force: true });
}

export function makeElementTree(spec: TreeSpec, base = mkdtempSync(join(tmpdir(), 'osp-image-els-'))): string {
  made.push(base);
  for (const [el, files] of Object.entries(spec)) {
    mkdirSync(join(base, el), { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
      const p = join(base, el, rel);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, content);
      if (/\.d\/\d\d-/.test(rel)) chmodSync(p, 0o755);
    }
  }
  return base;
}
