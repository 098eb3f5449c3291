import { afterAll, describe, expect, it } from 'vitest';
import { ElementLibrary } from '../../image-builder/elements.js';
import { resolveElements } from '../../image-builder/resolve.js';
import { makeElementTree, removeElementTrees } from './element-tree.js';

afterAll(removeElementTrees);

function names(requested: string[], tree: string): string[] {
  return resolveElements(requested, new ElementLibrary([tree])).ordered.map((e) => e.name);
}

describe('element resolution', () => {
  it('resolves dependencies transitively, dependencies first', () => {
    const t = makeElementTree({
      app: { 'element-deps': 'base\nnet\n' },
      net: { 'element-deps': 'base\n' },
      base: {},
      unused: {},
    });
    expect(names(['app'], t)).toEqual(['base', 'net', 'app']);
  });

  it('reports a cycle with every element on it', () => {
    const t = makeElementTree({ a: { 'element-deps': 'b' }, b: { 'element-deps': 'c' }, c: { 'element-deps': 'a' } });
    expect(() => names(['a'], t)).toThrow(/cycle: a -> b -> c -> a/);
  });

  it('names a missing element and who required it', () => {
    const t = makeElementTree({ a: { 'element-deps': 'ghost # comment ignored' } });
    expect(() => names(['a'], t)).toThrow(/element 'ghost' not found \(required by 'a'\)/);
    expect(() => names(['nope'], t)).toThrow(/element 'nope' not found \(requested on the command line\)/);
  });

  it('satisfies a dependency through element-provides', () => {
    const t = makeElementTree({
      app: { 'element-deps': 'operating-system' },
      debianish: { 'element-provides': 'operating-system' },
    });
    expect(names(['debianish', 'app'], t)).toEqual(['debianish', 'app']);
    expect(() => names(['app'], t)).toThrow(/element 'operating-system' not found/);
  });

  it('refuses two elements providing the same name', () => {
    const t = makeElementTree({ os1: { 'element-provides': 'operating-system' }, os2: { 'element-provides': 'operating-system' } });
    expect(() => names(['os1', 'os2'], t)).toThrow(/elements 'os1' and 'os2' both provide 'operating-system'/);
  });

  it('lets ELEMENTS_PATH shadow a later folder with the same element name', () => {
    const builtin = makeElementTree({ x: { 'element-deps': 'y' }, y: {} });
    const user = makeElementTree({ x: {} });
    const lib = new ElementLibrary([user, builtin]);
    expect(resolveElements(['x'], lib).ordered.map((e) => e.dir)).toEqual([`${user}/x`]);
  });

  it('rejects a package-installs.yaml that is not a mapping, naming the file', () => {
    const t = makeElementTree({ p: { 'package-installs.yaml': '- curl\n' } });
    expect(() => names(['p'], t)).toThrow(/element 'p': .*package-installs.yaml must be a mapping.*got a list/);
  });
});
