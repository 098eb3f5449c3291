import { describe, expect, it } from 'vitest';
import { renderList, renderOne, type Column } from '../../cli/output.js';

interface Row { name: string; value: string }
const COLUMNS: Column<Row>[] = [
  { key: 'name', label: 'Name', get: (r) => r.name },
  { key: 'value', label: 'Value', get: (r) => r.value },
];

describe('ospctl tables', () => {
  it('a cell of several lines takes several lines of its row; every line keeps the borders', () => {
    const out = renderList([{ name: 'deploy_stdout', value: 'line one\nsecond line\n' }, { name: 'x', value: 'y' }], COLUMNS, 'table', []);
    expect(out).toBe([
      '+---------------+-------------+',
      '| Name          | Value       |',
      '+---------------+-------------+',
      '| deploy_stdout | line one    |',
      '|               | second line |',
      '| x             | y           |',
      '+---------------+-------------+',
      '',
    ].join('\n'));
  });

  it('json keeps the newlines as data', () => {
    const out = renderOne({ name: 'a', value: 'l1\nl2' }, COLUMNS, 'json', []);
    expect(JSON.parse(out)).toEqual({ name: 'a', value: 'l1\nl2' });
  });
});
