import { describe, expect, it } from 'vitest';
import { applyPatch } from '../../server/nodes/patch.js';
import { applyRuleChanges, describeChange, describeLog, evaluateRules } from '../../server/inspection/rules/engine.js';
import { parseRuleDocument } from '../../server/inspection/rules/validate.js';
import type { Rule } from '../../server/inspection/rules/types.js';
import { BOCHS, DELL, IRONIC_API, KVM, inventory, node } from './helpers.js';
import { fixedSample, ruleText } from './ironic-helpers.js';

/**
 * Ironic-format rules evaluated over the fixture inventories. Facts the
 * expectations rest on, read from the fixtures: the Dell R320 has 16 CPUs,
 * 81920 MB, BMC 10.9.10.109, BIOS boot, manufacturer "Dell Inc."; the KVM
 * guest 2 CPUs, 6144 MB, "Red Hat"/"KVM", serial ""; the Bochs VM 2 CPUs,
 * 2048 MB; Ironic's node-inventory answer has 1 CPU and no memory section.
 */

const rules = (doc: unknown): Rule[] => parseRuleDocument(typeof doc === 'string' ? doc : JSON.stringify(doc), 'test');
const enrolling = () => node({ provisionState: 'enroll' });

/** Does a single-condition rule match? */
function holds(file: string, cond: Record<string, unknown>, inv?: Record<string, unknown>): boolean {
  const r = rules({ priority: 0, conditions: [cond], actions: [{ op: 'add-trait', args: ['CUSTOM_HIT'] }] });
  const e = evaluateRules(r, { inventory: inv ?? inventory(file), node: node() });
  expect(e.failure).toBeUndefined();
  return e.matched.length === 1;
}

function failureOf(file: string, cond: Record<string, unknown>): string | undefined {
  const r = rules({ uuid: 'c', conditions: [cond], actions: [{ op: 'add-trait', args: ['CUSTOM_HIT'] }] });
  return evaluateRules(r, { inventory: inventory(file), node: node() }).failure;
}

describe("Ironic's fixture rules over the fixture inventories", () => {
  const create = rules(ruleText('ironic-inspection-rule-create-request.json'));

  it('the BMC-credentials rule matches a Dell only when it was discovered (plugin data, or a node still in enroll)', () => {
    expect(evaluateRules(create, { inventory: inventory(DELL), node: node() }).matched).toEqual([]);
    expect(evaluateRules(create, { inventory: inventory(KVM), node: enrolling() }).matched).toEqual([]);
    expect(evaluateRules(create, { inventory: { ...inventory(DELL), auto_discovered: true }, node: node() }).matched).toEqual([create[0].uuid]);
    const e = evaluateRules(create, { inventory: inventory(DELL), node: enrolling() });
    expect(e.failure).toBeUndefined();
    expect(e.matched).toEqual([create[0].uuid]);
    // idrac is osp's redfish driver; Ironic's dotted path names the same key
    expect(e.changes.map((c) => ('value' in c ? [c.kind, 'path' in c ? c.path : '', c.value] : []))).toEqual([
      ['set-attribute', '/driver', 'redfish'],
      ['set-attribute', '/driver_info/redfish_address', 'https://10.9.10.109'],
      ['set-attribute', '/driver_info/redfish_username', 'admin'],
      ['set-attribute', '/driver_info/redfish_password', 'password'],
    ]);
    const { input } = applyPatch(enrolling(), applyRuleChanges(e.changes));
    expect(input.driver).toBe('redfish');
    expect(input.driverInfo).toEqual({ address: 'https://10.9.10.109', username: 'admin', password: 'password' });
    // a sensitive rule: every value masked where people read the changes
    expect(e.changes.map(describeChange)).toEqual([
      'set driver = ******', 'set driver_info/redfish_address = ******', 'set driver_info/redfish_username = ******', 'set driver_info/redfish_password = ******',
    ]);
  });

  it('the detail rule sets cpus, memory_mb and cpu_arch from the inventory, as numbers read from it', () => {
    const detail = rules(ruleText('ironic-inspection-rule-detail-response.json'));
    for (const [file, cpus, mem] of [[DELL, '16', '81920'], [KVM, '2', '6144'], [BOCHS, '2', '2048']] as const) {
      const e = evaluateRules(detail, { inventory: inventory(file), node: node() });
      expect(e.failure).toBeUndefined();
      expect(e.changes.map(describeChange)).toEqual([`set properties/cpus = ${cpus}`, `set properties/memory_mb = ${mem}`, 'set properties/cpu_arch = x86_64']);
    }
    // no memory section: the action's template reaches nothing, which fails inspection naming it
    expect(evaluateRules(detail, { inventory: inventory(IRONIC_API), node: node() }).failure)
      .toBe('rule 783bf33a-a8e3-1e23-a645-1e95a1f95186 actions[1]: template {inventory[memory][physical_mb]}: nothing at that path');
  });

  describe('the YAML sample (templates quoted and bracketed), run by priority 100, 90, 60, 50', () => {
    const sample = rules(fixedSample());

    it('Dell, not discovered: high memory (81920 ≥ 65536) adds the trait and capability; 16 CPUs pass; BIOS is not UEFI', () => {
      const e = evaluateRules(sample, { inventory: inventory(DELL), node: node() });
      expect(e).toEqual({
        matched: ['rule-add-hardware-traits'],
        changes: [
          { rule: 'rule-add-hardware-traits', kind: 'add-trait', name: 'CUSTOM_HIGH_MEMORY' },
          { rule: 'rule-add-hardware-traits', kind: 'set-capability', name: 'memory_class', value: 'high' },
        ],
      });
    });

    it('Dell, discovered: the sensitive iDRAC rule runs first and its log line is masked', () => {
      const e = evaluateRules(sample, { inventory: inventory(DELL), node: enrolling() });
      expect(e.matched).toEqual(['rule-dell-bmc-setup', 'rule-add-hardware-traits']);
      expect(e.logs?.map(describeLog)).toEqual(['info: ******']);
    });

    it('Dell booted UEFI: the boot-mode rule (60) runs after the traits (90) and logs', () => {
      const inv = inventory(DELL);
      (inv.inventory as { boot: Record<string, string> }).boot.current_boot_mode = 'uefi';
      const e = evaluateRules(sample, { inventory: inv, node: node() });
      expect(e.matched).toEqual(['rule-add-hardware-traits', 'rule-boot-mode-uefi']);
      expect(e.changes.map(describeChange)).toEqual(['add trait CUSTOM_HIGH_MEMORY', 'set capability memory_class = high', 'set capability boot_mode = uefi']);
      expect(e.logs?.map(describeLog)).toEqual(['info: Configured UEFI boot mode']);
    });

    it('KVM (6144 MB, 2 CPUs) and Bochs (2 CPUs) fail with the rule\'s message', () => {
      for (const f of [KVM, BOCHS]) {
        const e = evaluateRules(sample, { inventory: inventory(f), node: node() });
        expect(e).toEqual({ matched: ['rule-reject-old-cpu'], changes: [], failure: 'Node has insufficient CPU cores (minimum 4 required)' });
      }
    });
  });
});

describe('conditions, with Python\'s semantics', () => {
  it('! negates any condition', () => {
    const c = { op: 'contains', args: ['{inventory[system_vendor][manufacturer]}', '(?i)dell'] };
    expect(holds(DELL, c)).toBe(true);
    expect(holds(DELL, { ...c, op: '!contains' })).toBe(false);
    expect(holds(KVM, { ...c, op: '! contains' })).toBe(true);
    expect(holds(KVM, { op: '!eq', args: ['{inventory[system_vendor][product_name]}', 'KVM'] })).toBe(false);
  });

  it('a value that is exactly one template keeps its type; text around a template makes a string', () => {
    expect(holds(DELL, { op: 'eq', args: ['{inventory[cpu][count]}', 16] })).toBe(true);
    expect(holds(DELL, { op: 'eq', args: ['{inventory[cpu][count]}', '16'] })).toBe(false);
    expect(holds(DELL, { op: 'eq', args: { values: ['{inventory[cpu][count]}', '16'], force_strings: true } })).toBe(true);
    expect(holds(DELL, { op: 'eq', args: ['{inventory[cpu][count]} cpus', '16 cpus'] })).toBe(true);
    expect(holds(DELL, { op: 'gt', args: ['{inventory[memory][physical_mb]}', 65536, 0] })).toBe(true);
    expect(holds(DELL, { op: 'is-true', args: ['{inventory[interfaces][0][has_carrier]}'] })).toBe(true);
    expect(holds(DELL, { op: 'one-of', args: ['{inventory[disks][0][rotational]}', [true, 'yes']] })).toBe(true);
    expect(holds(DELL, { op: 'eq', args: ['{inventory[interfaces][0][ipv4_address]}', null] })).toBe(true);
    expect(holds(KVM, { op: 'eq', args: ['{inventory[interfaces][0][lldp]}', []] })).toBe(true);
    // a list read whole: Ironic's `values` list style, and str() of it inside text
    expect(holds(KVM, { op: 'contains', args: ['{inventory[cpu][flags]}', "'hypervisor'"] })).toBe(true);
  });

  it('ordering a string against a number fails inspection, as Python refuses it', () => {
    expect(failureOf(DELL, { op: 'lt', args: ['{inventory[system_vendor][manufacturer]}', 4] }))
      .toBe('rule c conditions[0]: cannot order "Dell Inc." and 4 (a number and a string, or values without an order; force_strings compares them as text)');
  });

  it('is-empty, is-none, is-true, is-false', () => {
    expect(holds(KVM, { op: 'is-empty', args: ['{inventory[system_vendor][serial_number]}'] })).toBe(true);
    expect(holds(DELL, { op: 'is-empty', args: ['{inventory[system_vendor][serial_number]}'] })).toBe(false);
    expect(holds(DELL, { op: 'is-none', args: ['{inventory[interfaces][0][ipv4_address]}'] })).toBe(true);
    expect(holds(DELL, { op: 'is-none', args: ['{inventory[interfaces][3][ipv4_address]}'] })).toBe(false);
    expect(holds(KVM, { op: 'is-empty', args: ['{inventory[interfaces][0][lldp]}'] })).toBe(true);
    expect(holds(KVM, { op: 'is-none', args: ['{inventory[interfaces][0][lldp]}'] })).toBe(false);
    expect(holds(DELL, { op: 'is-false', args: ['{plugin_data[auto_discovered]}'] })).toBe(true);
    expect(holds(DELL, { op: 'is-true', args: ['yes'] })).toBe(true);
    expect(holds(DELL, { op: 'is-true', args: ['{inventory[system_vendor][manufacturer]}'] })).toBe(false);
  });

  it('in-net over an address; an address that is not one fails inspection', () => {
    expect(holds(DELL, { op: 'in-net', args: ['{inventory[bmc_address]}', '10.9.10.0/24'] })).toBe(true);
    expect(holds(DELL, { op: 'in-net', args: { address: '{inventory[bmc_address]}', subnet: '10.9.11.0/24' } })).toBe(false);
    expect(failureOf(DELL, { op: 'in-net', args: ['{inventory[system_vendor][manufacturer]}', '10.0.0.0/8'] })).toBe('rule c conditions[0]: in-net: address "Dell Inc." is not an IP address');
  });

  it('matches is anchored (re.match with $), contains searches', () => {
    const f = '{inventory[system_vendor][product_name]}';
    expect(holds(DELL, { op: 'matches', args: [f, 'PowerEdge R\\d+ .*'] })).toBe(true);
    expect(holds(DELL, { op: 'matches', args: [f, 'R320'] })).toBe(false);
    expect(holds(DELL, { op: 'contains', args: [f, 'R320'] })).toBe(true);
    expect(holds(KVM, { op: 'matches', args: [f, 'KVM|QEMU'] })).toBe(true);
  });

  it('node templates read the node as rules run, including earlier rules\' changes', () => {
    const r = rules([
      { uuid: 'first', priority: 2, actions: [{ op: 'set-capability', args: ['profile', 'compute'] }] },
      { uuid: 'second', priority: 1, conditions: [{ op: 'eq', args: ['{node.capabilities[profile]}', 'compute'] }], actions: [{ op: 'add-trait', args: ['CUSTOM_COMPUTE'] }] },
      { uuid: 'third', priority: 0, conditions: [{ op: 'eq', args: ['{node.name}', 'n1'] }, { op: '!is-empty', args: ['{node.traits}'] }], actions: [{ op: 'fail', args: ['node {node.name} has traits {node.traits}'] }] },
    ]);
    const e = evaluateRules(r, { inventory: inventory(KVM), node: node() });
    expect(e.matched).toEqual(['first', 'second', 'third']);
    expect(e.failure).toBe("node n1 has traits ['CUSTOM_COMPUTE']");
  });

  it('a condition template that reaches nothing is compared as written (as Ironic does), with a warning', () => {
    const r = rules({ uuid: 'w', conditions: [{ op: 'is-empty', args: ['{inventory[nope]}'] }], actions: [{ op: 'add-trait', args: ['CUSTOM_X'] }] });
    const e = evaluateRules(r, { inventory: inventory(KVM), node: node() });
    expect(e.matched).toEqual([]);
    expect(e.logs).toEqual([{ rule: 'w', level: 'warning', message: 'rule w conditions[0]: {inventory[nope]} reaches nothing; compared as written, as Ironic does' }]);
  });
});

describe('loop and multiple', () => {
  const loopCond = (multiple?: string) => ({
    op: 'eq', args: ['{inventory[system_vendor][product_name]}', '{item}'], loop: ['KVM', 'PowerEdge R640'], ...(multiple ? { multiple } : {}),
  });

  it('any (the default), all, first, last over the items', () => {
    expect(holds(KVM, loopCond())).toBe(true);
    expect(holds(KVM, loopCond('any'))).toBe(true);
    expect(holds(KVM, loopCond('all'))).toBe(false);
    expect(holds(KVM, loopCond('first'))).toBe(true);
    expect(holds(KVM, loopCond('last'))).toBe(false);
    expect(holds(DELL, loopCond())).toBe(false);
    // ! applies to each iteration before they are combined
    expect(holds(KVM, { ...loopCond('all'), op: '!eq' })).toBe(false);
    expect(holds(DELL, { ...loopCond('all'), op: '!eq' })).toBe(true);
  });

  it('in a loop Ironic compares as text: the number 16 equals the item "16"', () => {
    expect(holds(DELL, { op: 'eq', args: ['{inventory[cpu][count]}', '{item}'], loop: ['8', '16'] })).toBe(true);
  });

  it('an action runs once per item, with templates in the items rendered (Ironic\'s own example)', () => {
    const r = rules({
      uuid: 'creds', actions: [
        { op: 'set-attribute', args: { path: '{item[path]}', value: '{item[value]}' }, loop: [
          { path: '/driver_info/ipmi_username', value: 'admin' },
          { path: '/driver_info/ipmi_address', value: '{inventory[bmc_address]}' },
        ] },
        { op: 'add-trait', args: ['{item}'], loop: ['CUSTOM_A', 'CUSTOM_B'] },
        { op: 'set-capability', args: { name: '{item[name]}', value: '{item[value]}' }, loop: { name: 'cores', value: '{inventory[cpu][count]}' } },
      ],
    });
    const e = evaluateRules(r, { inventory: inventory(DELL), node: node({ driver: 'ipmi', driverInfo: { address: '192.0.2.1' } }) });
    expect(e.failure).toBeUndefined();
    // a mapping as the loop is one item, the mapping itself
    expect(e.changes.map(describeChange)).toEqual([
      'set driver_info/ipmi_username = admin', 'set driver_info/ipmi_address = 10.9.10.109', 'add trait CUSTOM_A', 'add trait CUSTOM_B', 'set capability cores = 16',
    ]);
  });
});

describe('actions map onto the osp node as inspector actions do', () => {
  const base = node({ driver: 'ipmi', driverInfo: { address: '192.0.2.9', username: 'old' }, ports: ['52:54:00:00:00:01'], capabilities: { profile: 'control', 'trait.CUSTOM_OLD': 'true' } });

  it('del-attribute, unset-capability, extend-attribute, remove-trait', () => {
    const r = rules({
      actions: [
        { op: 'del-attribute', args: ['driver_info.ipmi_username'] },
        { op: 'unset-capability', args: { name: 'profile' } },
        { op: 'extend-attribute', args: { path: 'ports', value: '{inventory[interfaces][2][mac_address]}', unique: true } },
        { op: 'remove-trait', args: ['CUSTOM_OLD'] },
        { op: 'set-capability', args: ['cores', '{inventory[cpu][count]}'] },
      ],
    });
    const e = evaluateRules(r, { inventory: inventory(DELL), node: base });
    expect(e.failure).toBeUndefined();
    const { input } = applyPatch(base, applyRuleChanges(e.changes));
    expect(input.driverInfo).toEqual({ address: '192.0.2.9' });
    expect(input.capabilities).toEqual({ cores: '16' });
    expect(input.ports).toEqual(['52:54:00:00:00:01', 'b0:83:fe:c6:63:87']);
  });

  it("a sensitive rule's values stay out of a failure message too", () => {
    const r = rules({ sensitive: true, actions: [{ op: 'set-attribute', args: ['/properties/cpu_arch', '{inventory[system_vendor][product_name]}'] }] });
    const e = evaluateRules(r, { inventory: inventory(KVM), node: base });
    expect(e.failure).toBe('the rules\' changes would make the node invalid: properties.cpu_arch: "******": expected one of x86_64, aarch64, ppc64le, s390x, i686, riscv64');
  });
});

describe('priority orders all rules; inspector v1 rules count as 0 and keep import order', () => {
  it('higher first, equal priorities in import order, v1 rules among the 0s', () => {
    const r = rules([
      { uuid: '00000000-0000-4000-8000-000000000001', description: 'v1, imported first', conditions: [], actions: [{ action: 'set-capability', name: 'x', value: 'v1' }] },
      { uuid: 'low', priority: 0, actions: [{ op: 'set-capability', args: ['x', 'low'] }] },
      { uuid: 'mid', priority: 10, actions: [{ op: 'set-capability', args: ['x', 'mid'] }] },
      { uuid: 'high', priority: 20, actions: [{ op: 'set-capability', args: ['x', 'high'] }] },
    ]);
    const e = evaluateRules(r, { inventory: inventory(KVM), node: node() });
    expect(e.matched).toEqual(['high', 'mid', '00000000-0000-4000-8000-000000000001', 'low']);
    expect(applyPatch(node(), applyRuleChanges(e.changes)).input.capabilities.x).toBe('low');
  });
});
