import { describe, expect, it } from 'vitest';
import { hiddenParameterNames, maskParameters, parseParameterSchemas, validateParameterValue, type ParameterSchema } from '../../server/orchestration/hot/parameters.js';
import type { HotProblem } from '../../server/orchestration/hot/problems.js';
import { parseYaml } from '../../server/orchestration/hot/source.js';
import { parseVersion } from '../../server/orchestration/hot/versions.js';
import { dedent } from './hot-helpers.js';

function schemas(yaml: string, problems: HotProblem[] = []): Map<string, ParameterSchema> {
  return parseParameterSchemas('t.yaml', parseYaml('t.yaml', dedent(yaml)).value, parseVersion('wallaby')!, problems);
}
function check(yaml: string, raw: unknown): unknown {
  const [s] = schemas(yaml).values();
  const r = validateParameterValue(s, raw);
  return 'error' in r ? r.error : r.value;
}

describe('HOT parameters: types (values given as text convert as Heat converts them)', () => {
  it('string', () => {
    expect(check('p: {type: string}', 'abc')).toBe('abc');
    expect(check('p: {type: string}', 12)).toBe('12');
  });
  it('number: integers and floats from text, Heat\'s message otherwise', () => {
    expect(check('p: {type: number}', '42')).toBe(42);
    expect(check('p: {type: number}', '0.25')).toBe(0.25);
    expect(check('p: {type: number}', 7)).toBe(7);
    expect(check('p: {type: number}', 'abc')).toBe("Parameter 'p' is invalid: could not convert string to float: 'abc'");
  });
  it('boolean: the strings oslo.utils accepts, either case', () => {
    for (const t of ['true', 'True', 'yes', 'y', 'on', '1', 't']) expect(check('p: {type: boolean}', t)).toBe(true);
    for (const f of ['false', 'no', 'n', 'off', '0', 'F']) expect(check('p: {type: boolean}', f)).toBe(false);
    expect(check('p: {type: boolean}', 'maybe')).toBe("Parameter 'p' is invalid: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'");
  });
  it('json: a JSON string, a mapping or a list', () => {
    expect(check('p: {type: json}', '{"a": [1]}')).toEqual({ a: [1] });
    expect(check('p: {type: json}', { a: 1 })).toEqual({ a: 1 });
    expect(check('p: {type: json}', [1, 2])).toEqual([1, 2]);
    expect(check('p: {type: json}', '{bad')).toMatch(/^Parameter 'p' is invalid: Value must be valid JSON: /);
  });
  it('comma_delimited_list: split and trimmed, or a list', () => {
    expect(check('p: {type: comma_delimited_list}', 'a, b ,c')).toEqual(['a', 'b', 'c']);
    expect(check('p: {type: comma_delimited_list}', '')).toEqual([]);
    expect(check('p: {type: comma_delimited_list}', ['x', 1])).toEqual(['x', '1']);
  });
});

describe('HOT parameters: constraints with Heat\'s wording', () => {
  it('range', () => {
    const y = 'p: {type: number, constraints: [{range: {min: 4, max: 17}}]}';
    expect(check(y, '10')).toBe(10);
    expect(check(y, '20')).toBe("Parameter 'p' is invalid: 20 is out of range (min: 4, max: 17)");
    expect(check('p: {type: number, constraints: [{range: {min: 1}}]}', 0)).toBe("Parameter 'p' is invalid: 0 is out of range (min: 1, max: None)");
  });
  it('length, on strings, lists and json', () => {
    expect(check('p: {type: string, constraints: [{length: {min: 6, max: 8}}]}', 'abc')).toBe("Parameter 'p' is invalid: length (3) is out of range (min: 6, max: 8)");
    expect(check('p: {type: comma_delimited_list, constraints: [{length: {max: 1}}]}', 'a,b')).toBe("Parameter 'p' is invalid: length (2) is out of range (min: None, max: 1)");
    expect(check('p: {type: json, constraints: [{length: {min: 1}}]}', {})).toBe("Parameter 'p' is invalid: length (0) is out of range (min: 1, max: None)");
  });
  it('allowed_values, for strings, numbers and each list item', () => {
    expect(check('p: {type: string, constraints: [{allowed_values: [m1.small, m1.large]}]}', 'm1.tiny')).toBe('Parameter \'p\' is invalid: "m1.tiny" is not an allowed value [m1.small, m1.large]');
    expect(check('p: {type: number, constraints: [{allowed_values: [1, 2]}]}', '2')).toBe(2);
    expect(check('p: {type: comma_delimited_list, constraints: [{allowed_values: [a, b]}]}', 'a,c')).toBe('Parameter \'p\' is invalid: "[\'a\', \'c\']" is not an allowed value [a, b]');
  });
  it('allowed_pattern matches the whole value', () => {
    const y = 'p: {type: string, constraints: [{allowed_pattern: "[A-Z]+[a-zA-Z0-9]*"}]}';
    expect(check(y, 'Admin1')).toBe('Admin1');
    expect(check(y, 'admin')).toBe('Parameter \'p\' is invalid: "admin" does not match pattern "[A-Z]+[a-zA-Z0-9]*"');
    expect(check(y, 'Admin-1')).toMatch(/does not match pattern/);
  });
  it('modulo', () => {
    expect(check('p: {type: number, constraints: [{modulo: {step: 2, offset: 1}}]}', 4)).toBe("Parameter 'p' is invalid: 4 is not a multiple of 2 with an offset of 1)");
  });
  it('a constraint\'s description replaces the message', () => {
    expect(check('p: {type: string, constraints: [{length: {min: 6}, description: User name must be at least 6 characters}]}', 'bob')).toBe("Parameter 'p' is invalid: User name must be at least 6 characters");
  });
  it('schema mistakes: constraint for the wrong type, bad default, unknown key, missing type', () => {
    const problems: HotProblem[] = [];
    schemas(`
      a: {type: string, constraints: [{range: {min: 1}}]}
      b: {type: number, default: 20, constraints: [{range: {max: 17}}]}
      c: {type: string, colour: red}
      d: {description: no type}
      e: {type: integer}`, problems);
    expect(problems.map((p) => `${p.line}:${p.column} ${p.message}`)).toEqual([
      "1:33 Parameter 'a' is invalid: Range constraint invalid for String",
      "2:1 Parameter 'b' is invalid: Invalid default 20 (20 is out of range (min: None, max: 17))",
      "3:19 Invalid key 'colour' for parameter (c)",
      '4:1 Missing parameter type for parameter: d',
      '5:11 Invalid type (integer) for parameter e: expected one of string, number, boolean, json, comma_delimited_list',
    ]);
  });
});

describe('hidden parameters', () => {
  it('are listed and masked', () => {
    const s = schemas('password: {type: string, hidden: true}\nuser: {type: string}');
    expect(hiddenParameterNames(s)).toEqual(['password']);
    expect(maskParameters({ password: 's3cret', user: 'admin' }, hiddenParameterNames(s))).toEqual({ password: '******', user: 'admin' });
  });
});
