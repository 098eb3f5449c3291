import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OspError } from '../../common/errors.js';
import { parseRuleDocument } from '../../server/inspection/rules/validate.js';
import { RULES_DIR } from './helpers.js';

function load(file: string) {
  return parseRuleDocument(readFileSync(path.join(RULES_DIR, file), 'utf8'), file);
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OspError);
    expect((e as OspError).code).toBe('RULE_INVALID');
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('the fixture rule files', () => {
  it.each([
    ['inspector-doc-enroll-auto-discovered-rule.json', 1],
    ['tripleo-doc-discovery-default-ipmi-credentials-rules.json', 1],
    ['tripleo-doc-profile-matching-rules.json', 3],
  ])('%s imports cleanly', (file, count) => {
    const rules = load(file);
    expect(rules).toHaveLength(count);
    for (const r of rules) expect(r.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps a given uuid and normalises inspector defaults', () => {
    const text = readFileSync(path.join(RULES_DIR, 'inspector-api-v1-create-rule-request.json'), 'utf8').replace(/driver_info\/deploy_(kernel|ramdisk)/g, 'driver_info/ipmi_$1_x');
    expect(() => parseRuleDocument(text, 'x')).toThrow(/ipmi_kernel_x/);
    const ok = parseRuleDocument(JSON.stringify({
      uuid: '7459BF7C-9FF9-43A8-BA9F-48542ECDA66C', conditions: [{ op: 'is-empty', field: 'node://driver_info.ipmi_address' }],
      actions: [{ action: 'set-attribute', path: 'driver_info/ipmi_address', value: '{data[inventory][bmc_address]}' }],
    }), 'x');
    expect(ok[0]).toMatchObject({ uuid: '7459bf7c-9ff9-43a8-ba9f-48542ecda66c', scope: '', description: '' });
    expect(ok[0].conditions[0]).toMatchObject({ invert: false, multiple: 'any' });
  });

  it('deploy_kernel/deploy_ramdisk (Glance images) are refused by name: osp serves its own ramdisk', () => {
    for (const f of ['inspector-api-v1-create-rule-request.json', 'inspector-api-v1-create-rule-response.json']) {
      const m = refusal(() => load(f));
      expect(m).toContain('rule.actions[0].path: "driver_info/deploy_kernel": expected a driver_info key osp drivers use');
      expect(m).toContain('rule.actions[1].path: "driver_info/deploy_ramdisk"');
    }
    const m = refusal(() => load('inspector-doc-ipmi-and-deploy-rules.json'));
    expect(m).toContain('rules[1].actions[0].path: "driver_info/deploy_kernel"');
    expect(m).not.toContain('rules[0]');
  });

  it('old driver names are refused with the drivers osp has', () => {
    expect(refusal(() => load('inspector-api-v1-get-rule-response.json'))).toMatch(/rule.actions\[0\].value: "agent_ipmitool": expected a driver osp has \(ipmi, .*redfish/);
    const m = refusal(() => load('tripleo-doc-discovery-per-vendor-rules.json'));
    expect(m).toContain('rules[1].actions[0].value: "pxe_drac"');
    expect(m).toContain('rules[1].actions[1].path: "driver_info/drac_username"');
  });

  it('a rule listing without conditions/actions is refused naming the missing actions', () => {
    expect(refusal(() => load('inspector-api-v1-get-rules-response.json'))).toContain('rules[0].actions: missing: expected a non-empty list of actions');
  });
  // Ironic's newer format is accepted now: ironic-format.test.ts.
});

describe('bad rules are refused naming the field, the value and what was expected', () => {
  const one = (rule: unknown) => refusal(() => parseRuleDocument(JSON.stringify(rule), 'r.json'));
  const act = [{ action: 'add-trait', name: 'CUSTOM_X' }];

  it.each([
    [{ conditions: [{ op: 'bigger', field: 'local_gb', value: 1 }], actions: act }, 'rule.conditions[0].op: "bigger": expected one of eq, ne, lt, gt, le, ge, in-net, matches, contains, is-empty'],
    [{ conditions: [{ op: 'eq', field: 'local_gb' }], actions: act }, 'rule.conditions[0].value: missing: expected a value to compare with (op eq)'],
    [{ conditions: [{ op: 'in-net', field: 'data://inventory.bmc_address', value: '10.0.0.0/33' }], actions: act }, 'rule.conditions[0].value: "10.0.0.0/33": expected a network in CIDR form'],
    [{ conditions: [{ op: 'matches', field: 'x', value: '(' }], actions: act }, 'rule.conditions[0].value: "(": expected a valid regular expression'],
    [{ conditions: [{ op: 'eq', field: 'ftp://x', value: 1 }], actions: act }, 'rule.conditions[0].field: "ftp://x": expected a field starting data:// or node://'],
    [{ conditions: [{ op: 'eq', field: 'x', value: 1, multiple: 'some' }], actions: act }, 'rule.conditions[0].multiple: "some": expected one of any, all, first'],
    [{ conditions: [{ op: 'eq', field: 'x', value: 1, invert: 'yes' }], actions: act }, 'rule.conditions[0].invert: "yes": expected true or false'],
    [{ conditions: [], actions: [] }, 'rule.actions: []: expected a non-empty list of actions'],
    [{ conditions: [], actions: [{ action: 'set-port-attribute' }] }, 'rule.actions[0].action: "set-port-attribute": expected one of set-attribute, set-capability, extend-attribute, add-trait, remove-trait, fail'],
    [{ conditions: [], actions: [{ action: 'set-attribute', path: 'extra/foo', value: 1 }] }, 'rule.actions[0].path: "extra/foo": expected a path under /name'],
    [{ conditions: [], actions: [{ action: 'set-attribute', path: 'properties/capabilities', value: 'a:b' }] }, '(use set-capability for capabilities)'],
    [{ conditions: [], actions: [{ action: 'set-capability', name: 'profile', value: 'a b' }] }, 'rule.actions[0].value: "a b": expected a capability value of letters, digits, _ . -'],
    [{ conditions: [], actions: [{ action: 'set-capability', name: 'x', value: '{inventory[cpu]}' }] }, 'rule.actions[0].value: "{inventory[cpu]}": expected a template field {data[…]}'],
    [{ conditions: [], actions: [{ action: 'add-trait', name: 'lower' }] }, 'rule.actions[0].name: "lower": expected a trait such as CUSTOM_GPU'],
    [{ conditions: [], actions: [{ action: 'fail' }] }, 'rule.actions[0].message: missing: expected the failure message'],
    [{ conditions: [], actions: [{ action: 'extend-attribute', path: 'capabilities', value: 'x' }] }, 'rule.actions[0].path: "capabilities": expected /ports'],
    [{ uuid: 'nope', conditions: [], actions: act }, 'rule.uuid: "nope": expected a UUID'],
  ])('%j', (rule, message) => {
    expect(one(rule)).toContain(message);
  });

  it('all or nothing: one bad rule rejects the document and every problem is listed', () => {
    const m = refusal(() => parseRuleDocument(JSON.stringify([
      { conditions: [], actions: [{ action: 'add-trait', name: 'CUSTOM_OK' }] },
      { conditions: [{ op: 'eq', field: 'x' }], actions: [{ action: 'fail' }] },
    ]), 'two.json'));
    expect(m).toMatch(/^two.json: 2 problem\(s\):/);
    expect(m).toContain('rules[1].conditions[0].value');
    expect(m).toContain('rules[1].actions[0].message');
  });

  it('duplicate uuids within a document and unparsable text', () => {
    const u = '7459bf7c-9ff9-43a8-ba9f-48542ecda66c';
    expect(refusal(() => parseRuleDocument(JSON.stringify([{ uuid: u, actions: [{ action: 'fail', message: 'a' }] }, { uuid: u, actions: [{ action: 'fail', message: 'b' }] }]), 'd'))).toContain('rules[1].uuid');
    expect(refusal(() => parseRuleDocument('{ "a": [', 'broken.json'))).toMatch(/^broken.json: not JSON or YAML/);
  });
});
