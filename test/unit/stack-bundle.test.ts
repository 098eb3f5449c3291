import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collectStackBundle } from '../../cli/stack-bundle.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temp tree from path → content; returns its root. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'osp-bundle-'));
  dirs.push(root);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    writeFileSync(path.join(root, p), text);
  }
  return root;
}

const text = (b: Record<string, Buffer>) => Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v.toString('utf8')]));

describe('ospctl stack bundle', () => {
  it('follows get_file, template types (also in a ResourceGroup resource_def) and registry files, recursively', async () => {
    const root = tree({
      'top.yaml': [
        'heat_template_version: wallaby',
        'resources:',
        '  cfg:',
        '    type: OS::Heat::SoftwareConfig',
        '    properties: {config: {get_file: scripts/run.sh}}',
        '  nested:',
        '    type: nested/child.yaml',
        '  group:',
        '    type: OS::Heat::ResourceGroup',
        '    properties: {count: 2, resource_def: {type: member.yaml}}',
        '  mapped:',
        '    type: OS::Site::Role',
      ].join('\n'),
      'scripts/run.sh': '#!/bin/sh\necho hi\n',
      'nested/child.yaml': 'heat_template_version: wallaby\nresources:\n  x:\n    type: OS::Heat::None\n    properties: {a: {get_file: data.txt}}\n',
      'nested/data.txt': 'child data',
      'member.yaml': 'heat_template_version: wallaby\n',
      'env/site.yaml': 'resource_registry:\n  OS::Site::Role: ../roles/role.yaml\n  OS::Other: OS::Heat::None\n  resources:\n    mapped:\n      OS::Site::Role: ../roles/special.yaml\nparameters: {p: 1}\n',
      'roles/role.yaml': 'heat_template_version: wallaby\nresources:\n  s:\n    type: OS::Heat::SoftwareConfig\n    properties: {config: {get_file: role.sh}}\n',
      'roles/role.sh': 'role script',
      'roles/special.yaml': 'heat_template_version: wallaby\n',
      'unrelated.txt': 'not referenced',
    });
    const b = await collectStackBundle('top.yaml', ['env/site.yaml'], root);
    expect(b.template).toBe('top.yaml');
    expect(b.environments).toEqual(['env/site.yaml']);
    expect(Object.keys(b.files).sort()).toEqual([
      'env/site.yaml', 'member.yaml', 'nested/child.yaml', 'nested/data.txt', 'roles/role.sh', 'roles/role.yaml', 'roles/special.yaml', 'scripts/run.sh', 'top.yaml',
    ]);
    expect(text(b.files)['nested/data.txt']).toBe('child data');
  });

  it('roots the bundle at the common folder, so a reference with .. stays inside it', async () => {
    const root = tree({
      'a/tht/overcloud.yaml': 'heat_template_version: wallaby\nresources:\n  c:\n    type: OS::Heat::SoftwareConfig\n    properties: {config: {get_file: ../../common/script.sh}}\n',
      'common/script.sh': 'x',
      'envs/prod/e.yaml': 'parameter_defaults: {a: 1}\n',
    });
    const b = await collectStackBundle(path.join(root, 'a/tht/overcloud.yaml'), [path.join(root, 'envs/prod/e.yaml')], '/');
    expect(Object.keys(b.files).sort()).toEqual(['a/tht/overcloud.yaml', 'common/script.sh', 'envs/prod/e.yaml']);
    expect(b.template).toBe('a/tht/overcloud.yaml');
    expect(b.environments).toEqual(['envs/prod/e.yaml']);
    // Alone, the template's folder is the root and the bundle holds just its name.
    const alone = tree({ 'x/t.yaml': 'heat_template_version: wallaby\n' });
    expect(await collectStackBundle('x/t.yaml', [], alone)).toMatchObject({ template: 't.yaml', environments: [] });
  });

  it('names the referring file and the reference when a referenced file does not exist', async () => {
    const root = tree({ 'a.yaml': 'heat_template_version: wallaby\nresources:\n  n:\n    type: missing/child.yaml\n' });
    await expect(collectStackBundle('a.yaml', [], root)).rejects.toThrow(`a.yaml: type missing/child.yaml: cannot read ${path.join(root, 'missing/child.yaml')}: no such file`);
    const env = tree({ 't.yaml': 'heat_template_version: wallaby\n', 'e.yaml': 'resource_registry:\n  OS::X: gone.yaml\n' });
    await expect(collectStackBundle('t.yaml', ['e.yaml'], env)).rejects.toThrow('e.yaml: resource_registry: "OS::X" gone.yaml: cannot read');
    await expect(collectStackBundle('nope.yaml', [], env)).rejects.toThrow(/^-t nope.yaml: cannot read .*nope.yaml: no such file$/);
  });

  it('sends a file that does not parse as it is, and leaves absolute paths and URLs for ospd to refuse', async () => {
    const root = tree({ 'bad.yaml': 'resources: [unclosed\n', 'abs.yaml': 'heat_template_version: wallaby\nresources:\n  c:\n    type: OS::Heat::None\n    properties: {a: {get_file: /etc/passwd}, b: {get_file: "http://example.com/x"}}\n' });
    expect(Object.keys((await collectStackBundle('bad.yaml', [], root)).files)).toEqual(['bad.yaml']);
    expect(Object.keys((await collectStackBundle('abs.yaml', [], root)).files)).toEqual(['abs.yaml']);
  });
});
