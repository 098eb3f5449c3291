import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { references } from '../../server/orchestration/hot/analysis.js';
import { parseYaml } from '../../server/orchestration/hot/source.js';
import { parseVersion } from '../../server/orchestration/hot/versions.js';
import { dedent, evalHot } from './hot-helpers.js';

describe('HOT intrinsic functions', () => {
  it('get_param returns the typed value and follows a path into json and lists', () => {
    const params = { name: 'web', cfg: { a: { b: [10, 20] } }, list: ['x', 'y'] };
    expect(evalHot('{get_param: name}', { params })).toBe('web');
    expect(evalHot('{get_param: [cfg, a, b, 1]}', { params })).toBe(20);
    expect(evalHot('{get_param: [list, "0"]}', { params })).toBe('x');
    expect(() => evalHot('{get_param: [cfg, nope]}', { params })).toThrow(/t.yaml:1:1: get_param: key "nope" not found \(keys: a\)/);
    expect(() => evalHot('{get_param: [list, 5]}', { params })).toThrow(/index 5 is out of range/);
  });

  it('get_resource and get_attr ask the context, get_attr with a path and without an attribute', () => {
    const attrs = { server: { networks: { ctlplane: ['10.0.0.5'] }, name: 'srv' } };
    expect(evalHot('{get_resource: server}')).toBe('server-id');
    expect(evalHot('{get_attr: [server, name]}', { attrs })).toBe('srv');
    expect(evalHot('{get_attr: [server, networks, ctlplane, 0]}', { attrs })).toBe('10.0.0.5');
    expect(evalHot('{get_attr: [server]}', { attrs })).toEqual(attrs.server);
  });

  it('str_replace replaces longest keys first and never rescans replaced text; strict variants refuse', () => {
    expect(evalHot(`
      str_replace:
        template: "$host:$hostname port $port"
        params: {$host: a, $hostname: "$port", $port: 80}`)).toBe('a:$port port 80');
    expect(evalHot('{str_replace: {template: "v=X", params: {X: {a: 1}}}}')).toBe('v={"a":1}');
    expect(() => evalHot('{str_replace_strict: {template: "abc", params: {zz: 1}}}')).toThrow(/The following params were not found in the template: 'zz'/);
    expect(() => evalHot('{str_replace_vstrict: {template: "abc", params: {a: ""}}}')).toThrow(/empty values: 'a'/);
    expect(evalHot('{str_replace_vstrict: {template: "abc", params: {a: "x"}}}')).toBe('xbc');
  });

  it('list_join, str_split, map_merge, map_replace, list_concat(_unique), filter', () => {
    expect(evalHot('{list_join: [",", [a, b], [c]]}')).toBe('a,b,c');
    expect(evalHot('{list_join: ["-", [1, {k: v}]]}')).toBe('1-{"k":"v"}');
    expect(evalHot('{str_split: [",", "a,b,c"]}')).toEqual(['a', 'b', 'c']);
    expect(evalHot('{str_split: [",", "a,b,c", 1]}')).toBe('b');
    expect(() => evalHot('{str_split: [",", "a,b", 7]}')).toThrow(/index 7 is out of range/);
    expect(evalHot('{map_merge: [{a: 1, b: 1}, {b: 2}]}')).toEqual({ a: 1, b: 2 });
    expect(evalHot('{map_replace: [{k1: v1, k2: v2}, {keys: {k1: K1}, values: {v2: V2}}]}')).toEqual({ K1: 'v1', k2: 'V2' });
    expect(() => evalHot('{map_replace: [{a: 1, b: 2}, {keys: {a: b}}]}')).toThrow(/key replacement b generates a duplicate key/);
    expect(evalHot('{list_concat: [[a, b], [b, c]]}')).toEqual(['a', 'b', 'b', 'c']);
    expect(evalHot('{list_concat_unique: [[a, b], [b, c]]}')).toEqual(['a', 'b', 'c']);
    expect(evalHot('{filter: [[null, ""], [a, null, "", b]]}')).toEqual(['a', 'b']);
  });

  it('repeat: for_each with permutations (default) and without', () => {
    expect(evalHot('{repeat: {for_each: {"%p%": [80, 443]}, template: {port: "%p%"}}}')).toEqual([{ port: '80' }, { port: '443' }]);
    expect(evalHot('{repeat: {for_each: {"<a>": [x, y], "<b>": [1, 2]}, template: "<a><b>"}}')).toEqual(['x1', 'x2', 'y1', 'y2']);
    expect(evalHot('{repeat: {for_each: {"<a>": [x, y], "<b>": [1, 2]}, template: "<a><b>", permutations: false}}')).toEqual(['x1', 'y2']);
    expect(evalHot('{repeat: {for_each: {"%n%": {get_param: names}}, template: "host-%n%"}}', { params: { names: ['a', 'b'] } })).toEqual(['host-a', 'host-b']);
  });

  it('digest: every hashlib algorithm Heat names', () => {
    for (const alg of ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']) {
      expect(evalHot(`{digest: [${alg}, "hello"]}`)).toBe(createHash(alg).update('hello').digest('hex'));
    }
    expect(() => evalHot('{digest: [crc32, "x"]}')).toThrow(/algorithm "crc32" is not one of/);
  });

  it('if with condition names, inline conditions and Wallaby\'s two-argument form', () => {
    expect(evalHot('{if: [prod, big, small]}', { conditions: { prod: true } })).toBe('big');
    expect(evalHot('{if: [prod, big, small]}', { conditions: { prod: false } })).toBe('small');
    expect(evalHot('{if: [{equals: [{get_param: env}, prod]}, 3, 1]}', { params: { env: 'prod' } })).toBe(3);
    expect(evalHot('{a: 1, b: {if: [prod, 2]}, c: [x, {if: [prod, y]}]}', { conditions: { prod: false } })).toEqual({ a: 1, c: ['x'] });
    expect(() => evalHot('{if: [prod, 2]}', { version: 'rocky' })).toThrow(/expected \[condition, value if true, value if false\]/);
  });

  it('equals, not, and, or, contains as condition functions', () => {
    const params = { a: 'x', n: 3, l: ['p', 'q'] };
    expect(evalHot('{if: [{not: {equals: [{get_param: a}, y]}}, T, F]}', { params })).toBe('T');
    expect(evalHot('{if: [{and: [{equals: [{get_param: n}, 3]}, {contains: [q, {get_param: l}]}]}, T, F]}', { params })).toBe('T');
    expect(evalHot('{if: [{or: [false, {contains: [z, {get_param: l}]}]}, T, F]}', { params })).toBe('F');
    expect(evalHot('{if: [{equals: [[1, {get_param: n}], [1, 3]]}, T, F]}', { params })).toBe('T');
  });

  it('get_file reads through the context (relative to the template)', () => {
    expect(evalHot('{get_file: scripts/run.sh}', { files: { 'scripts/run.sh': '#!/bin/sh\n' } })).toBe('#!/bin/sh\n');
  });

  it('unknown functions and functions the version does not allow are refused with their position', () => {
    expect(() => evalHot('a:\n  b: {get_params: x}')).toThrow(/t.yaml:2:6: get_params: unknown intrinsic function "get_params"/);
    expect(() => evalHot('{yaql: {expression: "1"}}')).toThrow(/YAQL expressions are not evaluated by osp/);
    expect(() => evalHot('{map_merge: [{a: 1}]}', { version: '2015-10-15' })).toThrow(/function "map_merge" is not allowed in heat_template_version 2015-10-15 \(from 2016-04-08 on\)/);
    expect(() => evalHot('{str_replace_vstrict: {template: a, params: {a: b}}}', { version: 'ocata' })).toThrow(/not allowed in heat_template_version ocata/);
    expect(() => evalHot('{"Fn::Join": ["", [a]]}')).toThrow(/CloudFormation function "Fn::Join" is not supported/);
    // A one-key mapping that is not shaped like a function stays data, as in Heat.
    expect(evalHot('{tripleo_timezone: UTC}')).toEqual({ tripleo_timezone: 'UTC' });
  });

  it('references() lists the resources a value depends on', () => {
    const v = parseYaml('t.yaml', dedent(`
      a: {get_resource: net}
      b: {list_join: [",", [{get_attr: [server, ip]}, {get_param: x}]]}
      c: {if: [cond, {get_resource: port}, null]}`)).value;
    expect(references(v, parseVersion('wallaby')!).sort()).toEqual(['net', 'port', 'server']);
  });
});
