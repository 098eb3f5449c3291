import { describe, expect, it } from 'vitest';
import { OspError } from '../../common/errors.js';
import { makeBundle, normaliseBundlePath, resolveInBundle } from '../../server/orchestration/hot/bundle.js';
import { parseYaml, positionOf, valuePositionOf } from '../../server/orchestration/hot/source.js';
import { validateStack } from '../../server/orchestration/hot/stack.js';
import { bundleOf } from './hot-helpers.js';

const refusal = (f: () => unknown): OspError => {
  try { f(); } catch (e) { return e as OspError; }
  throw new Error('not refused');
};

describe('template bundle', () => {
  it('normalises paths and refuses any name outside the bundle', () => {
    expect(normaliseBundlePath('./a//b/../c.yaml')).toBe('a/c.yaml');
    for (const bad of ['../x.yaml', '/etc/passwd', 'a/../../x', 'file:///etc/passwd', 'http://h/t.yaml', 'C:\\x']) expect(normaliseBundlePath(bad)).toBeUndefined();
    expect(resolveInBundle('env/e.yaml', '../t/n.yaml')).toBe('t/n.yaml');
    expect(resolveInBundle('e.yaml', '../../etc/passwd')).toBeUndefined();
    expect(resolveInBundle('e.yaml', '/etc/passwd')).toBeUndefined();
  });

  it('refuses a file or a total above the limit, naming the limit', () => {
    const e = refusal(() => makeBundle({ 'a.yaml': 'x'.repeat(11) }, { maxFileBytes: 10, maxTotalBytes: 100 }));
    expect(e.code).toBe('TEMPLATE_BUNDLE_TOO_LARGE');
    expect(e.message).toBe('bundle: file a.yaml is 11 bytes; the limit per file is 10 bytes');
    const t = refusal(() => makeBundle({ 'a.yaml': 'x'.repeat(8), 'b.yaml': 'x'.repeat(8) }, { maxFileBytes: 10, maxTotalBytes: 15 }));
    expect(t.message).toBe('bundle: 16 bytes or more in total; the limit is 15 bytes');
    expect(refusal(() => makeBundle({ '../up.yaml': '' })).message).toMatch(/file name "..\/up.yaml": expected a relative path inside the bundle/);
  });

  it('get_file and resource_registry entries outside the bundle are problems, never reads', () => {
    const b = bundleOf({
      't/top.yaml': `
        heat_template_version: wallaby
        resources:
          cfg:
            type: OS::Heat::Value
            properties:
              value: {get_file: ../../etc/passwd}
              other: {get_file: /etc/hostname}`,
      'env.yaml': `
        resource_registry:
          OS::X::Y: ../outside.yaml
          OS::X::Z: file:///etc/x.yaml`,
    });
    const r = validateStack(b, { template: 't/top.yaml', environments: ['env.yaml'] });
    expect(r.problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`)).toEqual([
      'env.yaml:2:13: resource_registry: "OS::X::Y": ../outside.yaml is outside the template bundle (absolute paths, URLs and ../ above the bundle are refused)',
      'env.yaml:3:13: resource_registry: "OS::X::Z": file:///etc/x.yaml is outside the template bundle (absolute paths, URLs and ../ above the bundle are refused)',
      't/top.yaml:6:14: get_file: ../../etc/passwd is outside the template bundle (absolute paths, URLs and ../ above the bundle are refused)',
      't/top.yaml:7:14: get_file: /etc/hostname is outside the template bundle (absolute paths, URLs and ../ above the bundle are refused)',
    ]);
  });
});

describe('YAML with positions', () => {
  it('every mapping, key and item knows its line and column', () => {
    const { value } = parseYaml('f.yaml', 'a:\n  b: [1, {c: 2}]\n  d: x\n');
    const a = (value as { a: { b: unknown[] } }).a;
    expect(positionOf(value, 'a')).toEqual({ file: 'f.yaml', line: 1, column: 1 });
    expect(positionOf(a, 'd')).toEqual({ file: 'f.yaml', line: 3, column: 3 });
    expect(valuePositionOf(a, 'd')).toEqual({ file: 'f.yaml', line: 3, column: 6 });
    expect(positionOf(a.b[1])).toEqual({ file: 'f.yaml', line: 2, column: 10 });
  });

  it('syntax errors come with their position', () => {
    const r = parseYaml('bad.yaml', 'a: 1\nb: [1, 2\nc: 3\n');
    expect(r.problems.length).toBeGreaterThan(0);
    expect(r.problems[0]).toMatchObject({ file: 'bad.yaml', line: expect.any(Number), column: expect.any(Number) });
    expect(r.problems[0].line).toBeGreaterThanOrEqual(2);
    expect(r.problems[0].message).toMatch(/^YAML: /);
    const dup = parseYaml('dup.yaml', 'a: 1\na: 2\n');
    expect(dup.problems.map((p) => `${p.line}:${p.column}`)).toEqual(['2:1']);
  });
});
