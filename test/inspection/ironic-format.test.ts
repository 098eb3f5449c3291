import { describe, expect, it } from 'vitest';
import { OspError } from '../../common/errors.js';
import { parseRuleDocument } from '../../server/inspection/rules/validate.js';
import { isIronicRule, type IronicRule } from '../../server/inspection/rules/types.js';
import { fixedSample, quotedSample, ruleText as text } from './ironic-helpers.js';

/** Importing Ironic's newer inspection-rule format: the fixtures, and refusals one line per problem. */

function ironic(doc: string, source = 'test'): IronicRule[] {
  const rules = parseRuleDocument(doc, source);
  for (const r of rules) expect(isIronicRule(r)).toBe(true);
  return rules as IronicRule[];
}

function refusal(doc: string, source = 'r.json'): string[] {
  try {
    parseRuleDocument(doc, source);
  } catch (e) {
    expect(e).toBeInstanceOf(OspError);
    expect((e as OspError).code).toBe('RULE_INVALID');
    const [head, ...lines] = (e as Error).message.split('\n');
    expect(head).toBe(`${source}: ${lines.length} problem(s):`);
    return lines;
  }
  throw new Error('expected a refusal');
}

describe("Ironic's fixtures", () => {
  it('the create request imports as one sensitive priority-100 rule with a generated uuid', () => {
    const [r] = ironic(text('ironic-inspection-rule-create-request.json'));
    expect(r).toMatchObject({ format: 'ironic', description: 'BMC credentials', priority: 100, phase: 'main', sensitive: true });
    expect(r.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r.conditions.map((c) => c.op)).toEqual(['contains', 'is-true']);
    // kept as written, so it can be shown back the way it came
    expect(r.actions[1]).toEqual({ op: 'set-attribute', args: { path: 'driver_info.redfish_address', value: 'https://{inventory[bmc_address]}' } });
  });

  it("the detail response (Ironic's {inspection_rules: […]} answer) imports with its uuid; response-only keys are dropped", () => {
    const [r] = ironic(text('ironic-inspection-rule-detail-response.json'));
    expect(r).toEqual({
      format: 'ironic', uuid: '783bf33a-a8e3-1e23-a645-1e95a1f95186', description: 'Set properties on discovered data', priority: 50, phase: 'main', sensitive: false,
      conditions: [{ op: 'is-true', args: { value: '{inventory[cpu][count]}' } }],
      actions: [
        { op: 'set-attribute', args: { path: '/properties/cpus', value: '{inventory[cpu][count]}' } },
        { op: 'set-attribute', args: { path: '/properties/memory_mb', value: '{inventory[memory][physical_mb]}' } },
        { op: 'set-attribute', args: { path: '/properties/cpu_arch', value: '{inventory[cpu][architecture]}' } },
      ],
    });
  });

  it('the list response carries no actions (Ironic lists rules without them), so each rule is refused for it', () => {
    expect(refusal(text('ironic-inspection-rule-list-response.json'), 'list.json')).toEqual([0, 1, 2].map((i) => `rules[${i}].actions: missing: expected a non-empty list of actions`));
  });

  it('the YAML sample: its one unquoted template is the only problem, named with the fix', () => {
    expect(refusal(text('ironic-inspection-rules.yaml.sample'), 'sample.yaml')).toEqual([
      'rules[1].conditions[0].args[0][0]: {"inventory.memory.physical_mb":null}: expected a string: YAML read the unquoted template {inventory.memory.physical_mb} as a mapping; quote it: "{inventory.memory.physical_mb}"',
    ]);
  });

  it('quoted, the template still reads a mapping with dots, which Ironic leaves unrendered: refused with the bracket form', () => {
    expect(refusal(quotedSample(), 'sample.yaml')).toEqual([
      'rules[1].conditions[0].args.values[0]: "{inventory.memory.physical_mb}": expected {inventory[memory][physical_mb]}: mappings are read with brackets (Ironic leaves {inventory.memory.physical_mb} unrendered)',
    ]);
  });

  it("with brackets the whole sample imports: built-in-style ids, priorities, the log action, idrac", () => {
    const rules = ironic(fixedSample());
    expect(rules.map((r) => [r.uuid, r.priority, r.sensitive])).toEqual([
      ['rule-dell-bmc-setup', 100, true], ['rule-add-hardware-traits', 90, false], ['rule-reject-old-cpu', 50, false], ['rule-boot-mode-uefi', 60, false],
    ]);
    expect(rules[1].conditions[0]).toEqual({ op: '!lt', args: [['{inventory[memory][physical_mb]}', 65536]] });
  });
});

describe('Ironic rules osp cannot honour are refused at import, one line per problem', () => {
  const rule = (over: Record<string, unknown>) => ({ priority: 1, conditions: [], actions: [{ op: 'add-trait', args: ['CUSTOM_X'] }], ...over });
  const one = (over: Record<string, unknown>) => refusal(JSON.stringify(rule(over)));

  it.each([
    [{ phase: 'cleaning' }, 'rule.phase: "cleaning": expected main (the only inspection phase Ironic has'],
    [{ priority: -1 }, 'rule.priority: -1: expected a whole number from 0 to 9999'],
    [{ priority: 10000 }, 'rule.priority: 10000: expected a whole number from 0 to 9999'],
    [{ sensitive: 'yes' }, 'rule.sensitive: "yes": expected true or false'],
    [{ scope: 'rack-1' }, 'rule.scope: "rack-1": expected no scope in an Ironic-format rule'],
    [{ uuid: 'not an id!' }, 'rule.uuid: "not an id!": expected a UUID or an id'],
    [{ built_in: true }, 'rule.built_in: true: expected only uuid, description, priority, phase, sensitive, conditions, actions'],
    [{ actions: [{ op: 'set-plugin-data', args: { path: 'x', value: 1 } }] }, 'rule.actions[0].op: "set-plugin-data": expected one of fail, log, set-attribute'],
    [{ actions: [{ op: 'set-plugin-data', args: { path: 'x', value: 1 } }] }, 'osp does not carry out set-plugin-data: osp keeps the inventory as the machine sent it'],
    [{ actions: [{ op: 'set-port-attribute', args: ['52:54:00:00:00:01', 'extra/x', 1] }] }, 'osp does not carry out set-port-attribute: osp ports are MAC addresses with no attributes'],
    [{ actions: [{ op: 'api-call', args: { url: 'http://x' } }] }, 'osp does not carry out api-call: osp rules change only the node'],
    [{ actions: [{ op: 'frobnicate', args: [] }] }, 'rule.actions[0].op: "frobnicate": expected one of fail, log, set-attribute, extend-attribute, del-attribute, set-capability, unset-capability, add-trait, remove-trait'],
    [{ actions: [{ op: '!add-trait', args: ['CUSTOM_X'] }] }, 'rule.actions[0].op: "!add-trait": expected an action name (only conditions are negated with !)'],
    [{ conditions: [{ op: 'ne', args: ['a', 'b'] }] }, "rule.conditions[0].op: \"ne\": expected one of eq, lt, gt, is-empty, in-net, matches, contains, one-of, is-none, is-true, is-false (! before one negates it); Ironic's format has no ne: write !eq"],
    [{ conditions: [{ op: 'ge', args: ['a', 'b'] }] }, "Ironic's format has no ge: write !lt"],
    [{ conditions: [{ op: '!!eq', args: ['a', 'b'] }] }, 'rule.conditions[0].op: "!!eq": expected at most one leading !'],
    [{ conditions: [{ op: 'eq', args: 'a' }] }, 'rule.conditions[0].args: "a": expected a list of arguments (positional) or a mapping (by name)'],
    [{ conditions: [{ op: 'contains', args: ['{inventory[x]}'] }] }, 'rule.conditions[0].args.regex: missing: expected the regex argument of contains'],
    [{ conditions: [{ op: 'is-true', args: ['a', 'b'] }] }, 'rule.conditions[0].args: ["a","b"]: expected at most 1 argument(s) for is-true (value)'],
    [{ conditions: [{ op: 'is-true', args: { value: 1, field: 'x' } }] }, 'rule.conditions[0].args.field: "x": expected only value for is-true'],
    [{ conditions: [{ op: 'matches', args: ['{inventory[x]}', '('] }] }, 'rule.conditions[0].args.regex: "(": expected a valid regular expression'],
    [{ conditions: [{ op: 'in-net', args: ['{inventory[bmc_address]}', '10.0.0.0/33'] }] }, 'rule.conditions[0].args.subnet: "10.0.0.0/33": expected a network in CIDR form'],
    [{ conditions: [{ op: 'eq', args: { values: 'x' } }] }, 'rule.conditions[0].args.values: "x": expected a list of the values eq compares'],
    [{ conditions: [{ op: 'eq', args: ['{data[inventory][cpu]}', 1] }] }, "rule.conditions[0].args.values[0]: \"{data[inventory][cpu]}\": expected a field of {node…}, {inventory…}, {plugin_data…}, not {data[inventory][cpu]} (inspector's {data[…]} is {inventory[…]} or {plugin_data[…]} in Ironic's format)"],
    [{ conditions: [{ op: 'eq', args: ['{node[driver]}', 'ipmi'] }] }, 'rule.conditions[0].args.values[0]: "{node[driver]}": expected {node.<attribute>} with one of uuid, name, driver'],
    [{ conditions: [{ op: 'eq', args: ['{node.driver_info.ipmi_address}', 'x'] }] }, 'expected {node.driver_info[ipmi_address]}: mappings are read with brackets'],
    [{ conditions: [{ op: 'eq', args: ['{item}', 'x'] }] }, 'expected a field of {node…}, {inventory…}, {plugin_data…}, not {item}'],
    [{ conditions: [{ op: 'eq', args: ['{inventory[cpu]!r}', 'x'] }] }, 'expected a plain field such as {inventory[bmc_address]} (osp renders no conversions or format specs'],
    [{ conditions: [{ op: 'eq', args: ['{inventory[cpu]', 'x'] }] }, 'expected balanced {…} fields'],
    [{ conditions: [{ op: 'eq', args: ['x', 'y'], loop: [] }] }, 'rule.conditions[0].loop: []: expected a non-empty list of items, or a mapping (one item)'],
    [{ conditions: [{ op: 'eq', args: ['{item}', 'y'], loop: ['a'], multiple: 'some' }] }, 'rule.conditions[0].multiple: "some": expected one of any, all, first, last'],
    [{ actions: [{ op: 'set-attribute', args: { path: '/extra/foo', value: 1 } }] }, 'rule.actions[0].args.path: "/extra/foo": expected a path under /name'],
    [{ actions: [{ op: 'set-attribute', args: { path: '{inventory[x]}', value: 1 } }] }, 'rule.actions[0].args.path: "{inventory[x]}": expected a node attribute path such as /driver_info/ipmi_username, written out (or given by a loop item)'],
    [{ actions: [{ op: 'set-attribute', args: ['/driver', 'pxe_drac'] }] }, 'rule.actions[0].args.value: "pxe_drac": expected a driver osp has'],
    [{ actions: [{ op: 'set-attribute', args: ['/driver_info/deploy_kernel', 'x'] }] }, 'rule.actions[0].args.path: "/driver_info/deploy_kernel": expected a driver_info key osp drivers use'],
    [{ actions: [{ op: 'del-attribute', args: ['/name'] }] }, 'rule.actions[0].args.path: "/name": expected an attribute that can be removed'],
    [{ actions: [{ op: 'extend-attribute', args: ['/capabilities', 'x'] }] }, 'rule.actions[0].args.path: "/capabilities": expected /ports'],
    [{ actions: [{ op: 'set-capability', args: { name: 'profile', value: null } }] }, 'rule.actions[0].args.value: null: expected a value (unset-capability removes a capability)'],
    [{ actions: [{ op: 'set-capability', args: { name: 'profile', value: 'a b' } }] }, 'rule.actions[0].args.value: "a b": expected a capability value of letters, digits, _ . -'],
    [{ actions: [{ op: 'add-trait', args: { name: 'lower' } }] }, 'rule.actions[0].args.name: "lower": expected a trait such as CUSTOM_GPU'],
    [{ actions: [{ op: 'log', args: { msg: 'x', level: 'loud' } }] }, 'rule.actions[0].args.level: "loud": expected one of debug, info, warning, error, critical'],
    [{ actions: [{ op: 'fail', args: {} }] }, 'rule.actions[0].args.msg: missing: expected the msg argument of fail'],
    [{ actions: [{ op: 'add-trait', args: ['{item}'], loop: ['CUSTOM_OK', 'bad'] }] }, 'rule.actions[0].loop[1].name: "bad": expected a trait such as CUSTOM_GPU'],
    [{ actions: [{ op: 'set-attribute', args: ['{item[path]}', '{item[value]}'], loop: [{ path: '/driver_info/ipmi_username', value: 'a' }, { value: 'b' }] }] }, 'rule.actions[0].loop[1]: {"value":"b"}: expected an item that has what {item[path]} reads'],
  ])('%j', (over, message) => {
    const lines = one(over);
    expect(lines.some((l) => l.includes(message)), `${message}\nnot in\n${lines.join('\n')}`).toBe(true);
  });

  it('all or nothing: every problem of every rule is listed, and a good rule beside them is not imported', () => {
    const doc = [
      rule({ uuid: 'good-one' }),
      rule({ phase: 'cleaning', actions: [{ op: 'api-call', args: ['http://cmdb'] }, { op: 'set-port-attribute', args: ['aa', 'x', 1] }] }),
      { description: 'inspector v1 beside it', conditions: [{ op: 'eq', field: 'x' }], actions: [{ action: 'add-trait', name: 'CUSTOM_V1' }] },
    ];
    const lines = refusal(JSON.stringify(doc), 'mixed.json');
    expect(lines.map((l) => l.split(':')[0])).toEqual(['rules[1].phase', 'rules[1].actions[0].op', 'rules[1].actions[1].op', 'rules[2].conditions[0].value']);
  });

  it('inspector v1 and Ironic rules can share one document; uuids must still differ', () => {
    const v1 = { uuid: '7459bf7c-9ff9-43a8-ba9f-48542ecda66c', conditions: [], actions: [{ action: 'add-trait', name: 'CUSTOM_V1' }] };
    const rules = parseRuleDocument(JSON.stringify([v1, rule({ uuid: 'ironic-one' })]), 'd');
    expect(rules.map((r) => r.format ?? 'inspector')).toEqual(['inspector', 'ironic']);
    expect(refusal(JSON.stringify([v1, rule({ uuid: v1.uuid.toUpperCase() })]), 'd')).toEqual([
      'rules[1].uuid: "7459bf7c-9ff9-43a8-ba9f-48542ecda66c": expected a uuid not already used by rules[0]',
    ]);
  });

  it('positional and keyword args, both eq list styles, and ! with a space read alike', () => {
    const [r] = ironic(JSON.stringify(rule({
      conditions: [
        { op: 'eq', args: ['{inventory[cpu][count]}', 16] },
        { op: 'eq', args: [['{inventory[cpu][count]}', 16]] },
        { op: 'eq', args: { values: ['{inventory[cpu][count]}', 16], force_strings: true } },
        { op: '! eq', args: [['{node.name}', 'x'], true] },
      ],
    })));
    expect(r.conditions).toHaveLength(4);
  });
});
