import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyPatch } from '../../server/nodes/patch.js';
import { applyRuleChanges, describeChange, evaluateRules } from '../../server/inspection/rules/engine.js';
import { parseRuleDocument } from '../../server/inspection/rules/validate.js';
import type { Rule } from '../../server/inspection/rules/types.js';
import { BOCHS, DELL, KVM, RULES_DIR, inventory, node } from './helpers.js';

function rules(doc: unknown): Rule[] {
  return parseRuleDocument(JSON.stringify(doc), 'test');
}

/** Does a single-condition rule match the fixture? */
function holds(file: string, cond: Record<string, unknown>, n = node()): boolean {
  const r = rules({ conditions: [cond], actions: [{ action: 'set-capability', name: 'hit', value: 'yes' }] });
  return evaluateRules(r, { inventory: inventory(file), node: n }).matched.length === 1;
}

describe('condition operators on the fixture inventories', () => {
  it('eq / ne on strings (data:// path)', () => {
    const c = { op: 'eq', field: 'data://inventory.system_vendor.manufacturer', value: 'Dell Inc.' };
    expect(holds(DELL, c)).toBe(true);
    expect(holds(KVM, c)).toBe(false);
    expect(holds(DELL, { ...c, op: 'ne' })).toBe(false);
    expect(holds(KVM, { ...c, op: 'ne' })).toBe(true);
  });

  it('numeric comparisons: lt gt le ge, on plain paths and on boundaries', () => {
    expect(holds(DELL, { op: 'ge', field: 'local_gb', value: 557 })).toBe(true);
    expect(holds(DELL, { op: 'gt', field: 'local_gb', value: 557 })).toBe(false);
    expect(holds(DELL, { op: 'le', field: 'memory_mb', value: 81920 })).toBe(true);
    expect(holds(DELL, { op: 'lt', field: 'memory_mb', value: 81920 })).toBe(false);
    expect(holds(KVM, { op: 'lt', field: 'memory_mb', value: 8192 })).toBe(true);
    expect(holds(KVM, { op: 'gt', field: 'data://inventory.cpu.count', value: '1' })).toBe(true);
    // a numeric string in the data compares as a number (cpu.frequency is "1899.999")
    expect(holds(KVM, { op: 'lt', field: 'data://inventory.cpu.frequency', value: 2000 })).toBe(true);
    expect(holds(DELL, { op: 'lt', field: 'data://inventory.cpu.frequency', value: 2000 })).toBe(false);
  });

  it('eq with a boolean (inspector\'s auto_discovered rule)', () => {
    const r = rules(JSON.parse(readFileSync(path.join(RULES_DIR, 'inspector-doc-enroll-auto-discovered-rule.json'), 'utf8')));
    const inv = inventory(KVM);
    expect(evaluateRules(r, { inventory: inv, node: node() }).matched).toEqual([]);
    expect(evaluateRules(r, { inventory: { ...inv, auto_discovered: true }, node: node() }).matched).toEqual([r[0].uuid]);
  });

  it('in-net over every interface address, IPv4 and IPv6', () => {
    expect(holds(KVM, { op: 'in-net', field: 'data://inventory.interfaces[*].ipv4_address', value: '172.22.0.0/24' })).toBe(true);
    expect(holds(KVM, { op: 'in-net', field: 'data://inventory.interfaces[*].ipv4_address', value: '172.22.0.0/24', multiple: 'all' })).toBe(false);
    expect(holds(KVM, { op: 'in-net', field: 'data://inventory.interfaces[*].ipv4_address', value: '10.0.0.0/8' })).toBe(false);
    expect(holds(DELL, { op: 'in-net', field: 'data://inventory.bmc_address', value: '10.9.10.0/24' })).toBe(true);
    expect(holds(DELL, { op: 'in-net', field: 'data://inventory.bmc_address', value: '10.9.11.0/24' })).toBe(false);
    // Dell NICs without IPv4 (null) are simply not in the network
    expect(holds(DELL, { op: 'in-net', field: 'data://inventory.interfaces[*].ipv4_address', value: '10.8.146.0/24' })).toBe(true);
    expect(holds(DELL, { op: 'in-net', field: 'data://inventory.interfaces[*].ipv4_address', value: '10.8.146.0/24', multiple: 'all' })).toBe(false);
    const v6 = { op: 'in-net', field: 'data://inventory.interfaces[0].ipv6_address', value: 'fe80::/10' };
    // KVM's link-local address (with its %eth0 zone) is in fe80::/10, not in a ULA prefix
    expect(holds(KVM, v6)).toBe(true);
    expect(holds(KVM, { ...v6, value: 'fd00::/8' })).toBe(false);
  });

  it('matches is anchored at both ends; contains searches; (?i) works', () => {
    const f = 'data://inventory.system_vendor.product_name';
    expect(holds(DELL, { op: 'matches', field: f, value: 'PowerEdge R\\d+ .*' })).toBe(true);
    expect(holds(DELL, { op: 'matches', field: f, value: 'R320' })).toBe(false);
    expect(holds(DELL, { op: 'contains', field: f, value: 'R320' })).toBe(true);
    expect(holds(DELL, { op: 'contains', field: f, value: 'poweredge' })).toBe(false);
    expect(holds(DELL, { op: 'contains', field: f, value: '(?i)poweredge' })).toBe(true);
    expect(holds(KVM, { op: 'matches', field: f, value: 'KVM' })).toBe(true);
    // the KVM guest reports the hypervisor CPU flag, the Dell does not
    expect(holds(KVM, { op: 'contains', field: 'data://inventory.cpu.flags[*]', value: '^hypervisor$' })).toBe(true);
    expect(holds(DELL, { op: 'contains', field: 'data://inventory.cpu.flags[*]', value: '^hypervisor$' })).toBe(false);
  });

  it('is-empty on data and node fields, including missing ones', () => {
    expect(holds(KVM, { op: 'is-empty', field: 'data://inventory.system_vendor.serial_number' })).toBe(true);
    expect(holds(DELL, { op: 'is-empty', field: 'data://inventory.system_vendor.serial_number' })).toBe(false);
    expect(holds(KVM, { op: 'is-empty', field: 'data://inventory.no_such_thing' })).toBe(true);
    expect(holds(KVM, { op: 'is-empty', field: 'data://inventory.interfaces[*].lldp', multiple: 'all' })).toBe(true);
    expect(holds(DELL, { op: 'is-empty', field: 'data://inventory.interfaces[*].lldp', multiple: 'all' })).toBe(false);
    const f = { op: 'is-empty', field: 'node://driver_info.ipmi_password' };
    expect(holds(KVM, f, node({ driver: 'ipmi', driverInfo: { address: '10.0.0.1' } }))).toBe(true);
    expect(holds(KVM, f, node({ driver: 'ipmi', driverInfo: { address: '10.0.0.1', password: 'enc:v1:xx' } }))).toBe(false);
  });

  it('invert flips the result; a missing field fails the condition even inverted (inspector)', () => {
    const c = { op: 'eq', field: 'data://inventory.system_vendor.manufacturer', value: 'Dell Inc.', invert: true };
    expect(holds(DELL, c)).toBe(false);
    expect(holds(KVM, c)).toBe(true);
    expect(holds(KVM, { op: 'eq', field: 'data://inventory.nope', value: 1, invert: true })).toBe(false);
    expect(holds(KVM, { op: 'eq', field: 'data://inventory.nope', value: 1 })).toBe(false);
    expect(holds(DELL, { op: 'is-empty', field: 'data://inventory.bmc_address', invert: true })).toBe(true);
  });

  it('multiple: any, all, first over a list of interfaces', () => {
    const f = 'data://inventory.interfaces[*].name';
    expect(holds(DELL, { op: 'eq', field: f, value: 'em1', multiple: 'any' })).toBe(true);
    expect(holds(DELL, { op: 'eq', field: f, value: 'em1', multiple: 'all' })).toBe(false);
    expect(holds(DELL, { op: 'eq', field: f, value: 'p2p1', multiple: 'first' })).toBe(true);
    expect(holds(DELL, { op: 'eq', field: f, value: 'em1', multiple: 'first' })).toBe(false);
    expect(holds(DELL, { op: 'eq', field: 'data://inventory.interfaces[*].has_carrier', value: true, multiple: 'all' })).toBe(true);
  });

  it('node:// sees properties, capabilities and the prefixed driver_info names', () => {
    const n = node({ driver: 'ipmi', driverInfo: { address: '10.1.2.3' }, capabilities: { profile: 'compute', boot_mode: 'uefi' }, properties: { cpus: 8 } });
    expect(holds(KVM, { op: 'eq', field: 'node://driver_info.ipmi_address', value: '10.1.2.3' }, n)).toBe(true);
    expect(holds(KVM, { op: 'in-net', field: 'node://driver_info.address', value: '10.1.0.0/16' }, n)).toBe(true);
    expect(holds(KVM, { op: 'eq', field: 'node://capabilities.profile', value: 'compute' }, n)).toBe(true);
    expect(holds(KVM, { op: 'contains', field: 'node://properties.capabilities', value: 'boot_mode:uefi' }, n)).toBe(true);
    expect(holds(KVM, { op: 'ge', field: 'node://properties.cpus', value: 8 }, n)).toBe(true);
  });
});

describe('actions', () => {
  const base = node({ driver: 'ipmi', driverInfo: { address: '192.0.2.9' }, ports: ['52:54:00:00:00:01'], capabilities: { profile: 'control', 'trait.CUSTOM_OLD': 'true' } });
  const all = rules([{
    uuid: 'aaaaaaaa-0000-4000-8000-000000000001',
    conditions: [{ op: 'eq', field: 'data://inventory.system_vendor.manufacturer', value: 'Dell Inc.' }],
    actions: [
      { action: 'set-attribute', path: 'driver_info/ipmi_address', value: '{data[inventory][bmc_address]}' },
      { action: 'set-attribute', path: '/driver_info/ipmi_username', value: 'root' },
      { action: 'set-attribute', path: 'driver_info/ipmi_password', value: 's3cret' },
      { action: 'set-attribute', path: 'properties/cpu_arch', value: '{data[cpu_arch]}' },
      { action: 'set-capability', name: 'profile', value: 'compute' },
      { action: 'set-capability', name: 'vendor', value: 'dell' },
      { action: 'extend-attribute', path: 'ports', value: '{data[inventory][interfaces][2][mac_address]}', unique: true },
      { action: 'add-trait', name: 'CUSTOM_DELL' },
      { action: 'remove-trait', name: 'CUSTOM_OLD' },
    ],
  }]);

  it('every action becomes a patch the node registry applies', () => {
    const e = evaluateRules(all, { inventory: inventory(DELL), node: base });
    expect(e.failure).toBeUndefined();
    expect(e.matched).toEqual(['aaaaaaaa-0000-4000-8000-000000000001']);
    const ops = applyRuleChanges(e.changes);
    const { input } = applyPatch(base, ops);
    expect(input.driverInfo).toEqual({ address: '10.9.10.109', username: 'root', password: 's3cret' });
    expect(input.properties.cpuArch).toBe('x86_64');
    expect(input.capabilities).toEqual({ profile: 'compute', vendor: 'dell', 'trait.CUSTOM_DELL': 'true' });
    expect(input.ports).toEqual(['52:54:00:00:00:01', 'b0:83:fe:c6:63:87']);
    // secrets are masked where people read the changes
    expect(e.changes.map(describeChange)).toContain('set driver_info/ipmi_password = ******');
    expect(e.changes.map(describeChange).join('\n')).not.toContain('s3cret');
  });

  it('evaluation is pure: the node passed in is not changed', () => {
    const before = JSON.stringify(base);
    evaluateRules(all, { inventory: inventory(DELL), node: base });
    expect(JSON.stringify(base)).toBe(before);
  });

  it('set-capability null removes; fail stops with its message', () => {
    const r = rules([
      { conditions: [], actions: [{ action: 'set-capability', name: 'profile', value: null }] },
      { conditions: [{ op: 'lt', field: 'memory_mb', value: 8192 }], actions: [{ action: 'fail', message: 'too small' }] },
      { conditions: [], actions: [{ action: 'add-trait', name: 'CUSTOM_NEVER' }] },
    ]);
    const kvm = evaluateRules(r, { inventory: inventory(KVM), node: base });
    expect(kvm.failure).toBe('too small');
    expect(kvm.matched).toEqual([r[0].uuid, r[1].uuid]);
    expect(kvm.changes).toHaveLength(1);
    const dell = evaluateRules(r, { inventory: inventory(DELL), node: base });
    expect(dell.failure).toBeUndefined();
    const { input } = applyPatch(base, applyRuleChanges(dell.changes));
    expect(input.capabilities.profile).toBeUndefined();
    expect(input.capabilities['trait.CUSTOM_NEVER']).toBe('true');
  });

  it('later rules see earlier rules\' changes through node://', () => {
    const r = rules([
      { conditions: [{ op: 'is-empty', field: 'node://driver_info.ipmi_username' }], actions: [{ action: 'set-attribute', path: 'driver_info/ipmi_username', value: 'first' }] },
      { conditions: [{ op: 'is-empty', field: 'node://driver_info.ipmi_username' }], actions: [{ action: 'set-attribute', path: 'driver_info/ipmi_username', value: 'second' }] },
    ]);
    const e = evaluateRules(r, { inventory: inventory(KVM), node: base });
    expect(e.matched).toEqual([r[0].uuid]);
  });

  it('scope limits a rule to nodes with that inspection_scope capability', () => {
    const r = rules({ scope: 'rack-1', conditions: [], actions: [{ action: 'add-trait', name: 'CUSTOM_R1' }] });
    expect(evaluateRules(r, { inventory: inventory(KVM), node: base }).matched).toEqual([]);
    expect(evaluateRules(r, { inventory: inventory(KVM), node: node({ capabilities: { inspection_scope: 'rack-1' } }) }).matched).toHaveLength(1);
  });

  it('changes the node would refuse are reported as a failure, not applied', () => {
    const r = rules({ conditions: [], actions: [{ action: 'set-attribute', path: 'properties/cpu_arch', value: '{data[inventory][system_vendor][product_name]}' }] });
    const e = evaluateRules(r, { inventory: inventory(KVM), node: base });
    expect(e.failure).toMatch(/properties.cpu_arch: "KVM": expected one of x86_64/);
  });

  it('a template naming a missing key is a failure naming the template', () => {
    const r = rules({ conditions: [], actions: [{ action: 'set-capability', name: 'x', value: '{data[inventory][nope]}' }] });
    expect(evaluateRules(r, { inventory: inventory(KVM), node: base }).failure).toMatch(/\{data\[inventory\]\[nope\]\}: nothing at that path/);
  });
});

describe('the TripleO profile-matching rules on the fixtures', () => {
  const r = parseRuleDocument(readFileSync(path.join(RULES_DIR, 'tripleo-doc-profile-matching-rules.json'), 'utf8'), 'tripleo');
  it('Dell (557 GB) and KVM (49 GB) may be compute or control; Bochs (2 GiB RAM) fails', () => {
    for (const f of [DELL, KVM]) {
      const e = evaluateRules(r, { inventory: inventory(f), node: node({ capabilities: { profile: 'old' } }) });
      expect(e.failure).toBeUndefined();
      expect(e.matched).toEqual([r[2].uuid]);
      expect(e.changes.map(describeChange)).toEqual(['set capability compute_profile = 1', 'set capability control_profile = 1', 'remove capability profile']);
    }
    const bochs = evaluateRules(r, { inventory: inventory(BOCHS), node: node() });
    expect(bochs.failure).toBe('Memory too low, expected at least 4 GiB');
  });
});
