import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseNodeFile } from '../../server/nodes/import-file.js';
import { validateNode, checkName, parseCapabilities } from '../../server/nodes/validate.js';
import { applyPatch } from '../../server/nodes/patch.js';
import type { NodeRecord } from '../../server/nodes/model.js';

import { FIXTURES } from '../harness/fixtures.js';

const fixture = (f: string) => readFileSync(`${FIXTURES}/ironic/tripleo-nodes/${f}`, 'utf8');

describe('node file import', () => {
  it("reads TripleO's instackenv with ports", () => {
    const r = parseNodeFile(fixture('instackenv-ports.json'));
    expect(r.problems).toEqual([]);
    expect(r.nodes.map((n) => n.name)).toEqual(['node-a', 'node-b', 'node-n']);
    expect(r.nodes[0]).toMatchObject({
      driver: 'ipmi', ports: ['fa:16:3e:2a:0e:36'], driverInfo: { address: '10.0.0.8', username: 'admin', password: 'password' },
      properties: { cpus: 2, memoryMb: 4096, localGb: 40, cpuArch: 'x86_64' },
    });
  });

  it('names nameless nodes from their BMC and reports the shared MACs of the upstream sample', () => {
    const r = parseNodeFile(fixture('instackenv-mac.json'));
    expect(r.nodes.map((n) => n.name)).toEqual(['bmc-10-1-1-11', 'bmc-10-1-1-12', 'bmc-10-1-1-13', 'bmc-10-1-1-14']);
    expect(r.problems).toHaveLength(3);
    expect(r.problems[0]).toEqual({ field: 'nodes[1].mac', description: 'nodes[1] (bmc-10-1-1-12): mac: "ff:ff:ff:ff:ff:ff": expected a MAC not already used by nodes[0]' });
  });

  it("reads Ironic's native YAML shape", () => {
    const yaml = `nodes:\n  - name: n0\n    driver: redfish\n    driver_info: {redfish_address: "https://192.0.2.1", redfish_username: u, redfish_password: p, redfish_system_id: /redfish/v1/Systems/1}\n    properties: {cpu_arch: x86_64, local_gb: 100, root_device: {serial: S1}}\n    ports: [{address: "AA-BB-CC-DD-EE-01", pxe_enabled: true}]\n`;
    const r = parseNodeFile(yaml);
    expect(r.problems).toEqual([]);
    expect(r.nodes[0]).toMatchObject({
      driver: 'redfish', ports: ['aa:bb:cc:dd:ee:01'], rootDevice: { serial: 'S1' },
      driverInfo: { address: 'https://192.0.2.1', username: 'u', password: 'p', system_id: '/redfish/v1/Systems/1' },
    });
  });

  it('refuses a typo in a field name, cipher suite 0 and a bad number, naming each', () => {
    const r = parseNodeFile(JSON.stringify({ nodes: [
      { name: 'a', pm_type: 'ipmi', pm_adr: '192.0.2.1' },
      { name: 'b', pm_type: 'ipmi', pm_addr: '192.0.2.2', pm_cipher_suite: '0' },
      { name: 'c', pm_type: 'fake', cpu: 'many' },
    ] }));
    expect(r.problems).toEqual([
      { field: 'nodes[0].pm_adr', description: expect.stringMatching(/^nodes\[0\] \(a\): pm_adr: "192.0.2.1": expected a known node field/) },
      { field: 'nodes[0].pm_addr', description: 'nodes[0] (a): pm_addr: missing: expected the BMC address for pm_type ipmi' },
      { field: 'nodes[1].driver_info.cipher_suite', description: 'nodes[1] (b): driver_info.cipher_suite: "0": expected a cipher suite other than 0 (suite 0 has no authentication)' },
      { field: 'nodes[2].cpu', description: 'nodes[2] (c): cpu: "many": expected a whole number' },
    ]);
  });

  it('rejects a document that is not a node file', () => {
    expect(parseNodeFile('[1, 2').problems[0].description).toMatch(/not valid JSON or YAML/);
    expect(parseNodeFile('{"servers": []}').problems).toEqual([{ field: 'nodes', description: 'node file: expected {"nodes": [...]} at the top level' }]);
  });
});

describe('node validation', () => {
  it('accepts DNS labels only', () => {
    for (const ok of ['a', 'node-1', 'x'.repeat(63)]) expect(checkName(ok)).toBeNull();
    for (const bad of ['', '-a', 'a-', 'A', 'a_b', 'x'.repeat(64), 'a.b']) expect(checkName(bad)).not.toBeNull();
  });

  it('parses capabilities in string and mapping form', () => {
    expect(parseCapabilities('profile:compute,boot_mode:uefi').value).toEqual({ profile: 'compute', boot_mode: 'uefi' });
    expect(parseCapabilities({ profile: 'x' }).value).toEqual({ profile: 'x' });
    expect(parseCapabilities('nocolon').problem?.expected).toBe("'key:value,key:value'");
  });

  it('names unknown driver_info keys and bad ports', () => {
    const p = validateNode({ name: 'n', ports: [], driver: 'ipmi', driverInfo: { address: 'h', port: '70000', flavour: 'x' }, properties: {}, capabilities: {}, rootDevice: { colour: 'red' } });
    expect(p.map((x) => x.field)).toEqual(['driver_info.port', 'driver_info.flavour', 'root_device.colour']);
  });
});

describe('node patch', () => {
  const base: NodeRecord = {
    uuid: 'u', name: 'n', ports: ['52:54:00:00:00:01'], driver: 'ipmi', driverInfo: { address: 'h', password: 'enc:v1:x' }, properties: { cpus: 2 },
    capabilities: {}, rootDevice: {}, provisionState: 'enroll', powerState: 'unknown', maintenance: false, maintenanceReason: '', lastError: '', currentStep: '',
    createdAt: 't', updatedAt: 't',
  };

  it('applies add, replace and remove across fields', () => {
    const r = applyPatch(base, [
      { op: 'add', path: '/capabilities/profile', value: 'compute' },
      { op: 'replace', path: '/properties/cpus', value: '8' },
      { op: 'add', path: '/ports', value: '52:54:00:00:00:02' },
      { op: 'remove', path: '/ports', value: '52:54:00:00:00:01' },
      { op: 'add', path: '/driver_info/ipmi_port', value: '623' },
      { op: 'replace', path: '/maintenance', value: 'true' },
    ]);
    expect(r.input.capabilities).toEqual({ profile: 'compute' });
    expect(r.input.properties.cpus).toBe(8);
    expect(r.input.ports).toEqual(['52:54:00:00:00:02']);
    expect(r.input.driverInfo.port).toBe('623');
    expect(r.maintenance).toBe(true);
    expect(base.capabilities).toEqual({});
  });

  it('refuses unknown paths and non-numeric numbers, naming them', () => {
    expect(() => applyPatch(base, [{ op: 'add', path: '/colour', value: 'x' }])).toThrow(/^path: "\/colour": expected one of/);
    expect(() => applyPatch(base, [{ op: 'add', path: '/properties/cpus', value: 'lots' }])).toThrow('/properties/cpus: "lots": expected a whole number');
    expect(() => applyPatch(base, [{ op: 'move', path: '/name', value: 'x' }])).toThrow(/^op: "move"/);
  });
});
