import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run } from '../../cli/main.js';
import { removalsFor, stepOfResource, toServer } from '../../cli/overcloud/nodes.js';

afterEach(() => vi.restoreAllMocks());

async function ospctl(args: string[]): Promise<{ rc: number; stderr: string }> {
  let stderr = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  // No ospd listens here: a refusal must come before any connection.
  process.env.OSPCTL_CONFIG = path.join(os.tmpdir(), 'no-such-ospctl-config.yaml');
  const rc = await run(args);
  return { rc, stderr };
}

describe('ospctl overcloud, before anything is sent', () => {
  it('refuses an environment naming a role the roles file lacks (exit 2, the parameter and the roles named)', async () => {
    const env = path.join(mkdtempSync(path.join(os.tmpdir(), 'oc-cli-')), 'storage.yaml');
    writeFileSync(env, 'parameter_defaults:\n  StorageCount: 2\n');
    const r = await ospctl(['overcloud', 'deploy', '-e', env, '--dry-run']);
    expect(r.rc).toBe(2);
    expect(r.stderr).toContain('StorageCount');
    expect(r.stderr).toContain('the roles are Controller, Compute');
  });

  it('refuses a roles file that does not exist', async () => {
    const r = await ospctl(['overcloud', 'deploy', '-r', '/nonexistent/roles.yaml']);
    expect(r.rc).toBe(2);
    expect(r.stderr).toContain('-r /nonexistent/roles.yaml: cannot read /nonexistent/roles.yaml: no such file');
  });
});

describe('overcloud node matching', () => {
  const member = (role: string, name: string, host: string, node: string) => toServer({
    name, type: 'OS::TripleO::Server', stackPath: `overcloud/${role}Servers`, physicalId: `${node}-uuid`, status: 0, statusReason: '', updatedAt: '', requiredBy: [],
    propertiesJson: {}, attributesJson: { name: JSON.stringify(host), node_name: JSON.stringify(node), node_uuid: JSON.stringify(`${node}-uuid`) },
  })!;
  const all = [member('Controller', '0', 'oc-controller-0', 'n1'), member('Compute', '0', 'oc-novacompute-0', 'n2'), member('Compute', '1', 'oc-novacompute-1', 'n3')];

  it('removes exactly the named nodes, by host name, node name or uuid, per role', () => {
    const r = removalsFor(all, ['oc-novacompute-1', 'n3-uuid']);
    expect([...r.byRole]).toEqual([['Compute', ['1']]]);
    expect(removalsFor(all, ['n1', 'ghost']).unknown).toEqual(['ghost']);
  });

  it('names the step and service of a failed deployment from its resource', () => {
    expect(stepOfResource('ComputeComputeRegistrationStep3', ['Controller', 'Compute'])).toEqual({ role: 'Compute', service: 'ComputeRegistration', step: 3 });
    expect(stepOfResource('ControllerConfigSettingsDeployment', ['Controller'])).toBeUndefined();
  });
});
