import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TEMPLATES_DIR } from '../../cli/overcloud/bundle.js';

/** Runs a deploy/ step script as the agent would: inputs as environment, under a node root. */
function step(script: string, root: string, inputs: Record<string, string>): { ok: boolean; stderr: string; outputs: (n: string) => string } {
  const outputs = path.join(root, `.out-${script}`);
  let stderr = '';
  let ok = true;
  try {
    execFileSync('sh', [path.join(DEFAULT_TEMPLATES_DIR, 'scripts', script)], { env: { PATH: process.env.PATH, OSP_ROOT: root, heat_outputs_path: outputs, ...inputs }, stdio: 'pipe' });
  } catch (e) {
    ok = false;
    stderr = String((e as { stderr: Buffer }).stderr);
  }
  return { ok, stderr, outputs: (n) => readFileSync(`${outputs}.${n}`, 'utf8') };
}

describe('the default services\' step scripts (POSIX sh under a node root)', () => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'oc-scripts-'));
  const controller = path.join(base, 'controller');
  const compute = path.join(base, 'compute');
  const hosts = (h: string) => `10.0.0.2 oc-controller-0 # u-ctl\n${h}`;

  it('hosts, registry, registration and the step-5 check work together; a rerun after scale replaces the hosts block only', () => {
    mkdirSync(path.join(controller, 'etc'), { recursive: true });
    writeFileSync(path.join(controller, 'etc/hosts'), '127.0.0.1 localhost\n');
    for (const root of [controller, compute]) expect(step('hosts.sh', root, { all_hosts: hosts('10.0.0.5 oc-novacompute-0 # u-c0') }).ok).toBe(true);
    expect(step('registry-start.sh', controller, { controller_node_ips: '10.0.0.2' }).outputs('endpoint')).toBe('osp-registry://10.0.0.2/var/lib/osp-registry');
    const reg = step('compute-register.sh', compute, { controller_node_ips: '10.0.0.2', deploy_server_id: 'u-c0' }).outputs('registration');
    expect(reg).toBe('oc-novacompute-0 10.0.0.5 10.0.0.2');
    const check = step('registry-check.sh', controller, { controller_node_ips: '10.0.0.2', compute_node_names: 'oc-novacompute-0', compute_registration: JSON.stringify({ 0: reg }) });
    expect(check.outputs('registered_computes')).toBe('oc-novacompute-0');
    const missing = step('registry-check.sh', controller, { controller_node_ips: '10.0.0.2', compute_node_names: 'oc-novacompute-0 oc-novacompute-1', compute_registration: JSON.stringify({ 0: reg }) });
    expect(missing.ok).toBe(false);
    expect(missing.stderr).toContain('Compute oc-novacompute-1 did not register');
    step('hosts.sh', controller, { all_hosts: hosts('10.0.0.5 oc-novacompute-0 # u-c0\n10.0.0.6 oc-novacompute-1 # u-c1') });
    const text = readFileSync(path.join(controller, 'etc/hosts'), 'utf8');
    expect(text.startsWith('127.0.0.1 localhost\n')).toBe(true);
    expect(text.match(/BEGIN osp overcloud hosts/g)).toHaveLength(1);
    expect(text).toContain('10.0.0.6 oc-novacompute-1 # u-c1');
  });

  it('renders time servers and sysctl values from the parameters into files', () => {
    step('timesync.sh', compute, { ntp_servers: '["ntp1.lab","ntp2.lab"]', ntp_maxpoll: '10' });
    expect(readFileSync(path.join(compute, 'etc/osp/timesync.conf'), 'utf8')).toContain('server ntp2.lab iburst maxpoll 10');
    step('sysctl.sh', compute, { sysctl_settings: '{"vm.swappiness":10,"net.ipv4.ip_forward":1}' });
    expect(readFileSync(path.join(compute, 'etc/sysctl.d/90-osp.conf'), 'utf8')).toContain('vm.swappiness = 10\nnet.ipv4.ip_forward = 1');
    expect(step('timesync.sh', compute, { ntp_servers: '[]', ntp_maxpoll: '10' }).stderr).toContain('NtpServers is empty');
  });
});
