import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { isOspError } from '../../common/errors.js';
import { buildConfigDrive, CONFIG_DRIVE_LABEL } from '../../server/provision/config-drive.js';
import { OspdProcess } from '../harness/ospd.js';
import { NODE_UUID, PORTS, readWithCloudInit, sampleInput, sh, SSH_KEY, TREE_SOURCE, withDriveTree } from './config-drive-helpers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'osp-config-drive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function driveFile(name: string, bytes: Buffer): Promise<string> {
  const f = path.join(dir, name);
  writeFileSync(f, bytes);
  return f;
}

describe('buildConfigDrive', () => {
  it('makes a small vfat filesystem labelled config-2 in the OpenStack layout, and leaves no scratch files', async () => {
    const work = path.join(dir, 'work-layout');
    const bytes = await buildConfigDrive(sampleInput(work));
    expect(bytes.length).toBeLessThanOrEqual(4 * 1024 * 1024);
    const f = await driveFile('layout.img', bytes);
    expect((await sh('blkid', ['-p', '-o', 'export', f]))).toMatch(new RegExp(`^LABEL=${CONFIG_DRIVE_LABEL}$[\\s\\S]*^TYPE=vfat$`, 'm'));
    const listing = await sh('mdir', ['-/', '-b', '-i', f, '::/']);
    for (const v of ['latest', '2018-08-27']) {
      for (const file of ['meta_data.json', 'network_data.json', 'user_data']) expect(listing).toContain(`::/openstack/${v}/${file}`);
    }
    expect(listing).toContain('::/openstack/latest/osp-agent.yaml');
    expect(listing).not.toContain('::/openstack/2018-08-27/osp-agent.yaml');
    const agent = await sh('mtype', ['-i', f, '::/openstack/latest/osp-agent.yaml']);
    expect(YAML.parse(agent)).toMatchObject({ token: 'osp-node-token-for-test' });
    const meta = JSON.parse(await sh('mtype', ['-i', f, '::/openstack/latest/meta_data.json'])) as Record<string, unknown>;
    expect(meta).toMatchObject({ uuid: NODE_UUID, name: 'compute-0', hostname: 'compute-0.example.internal', launch_index: 0, meta: { role: 'compute', rack: 'r12' }, public_keys: { 'key-0': SSH_KEY } });
    expect((await sh('ls', ['-A', work])).trim()).toBe('');
  });

  it(`passes cloud-init's ConfigDrive reader (files from ${TREE_SOURCE}): metadata, user data, and a DHCP network on the boot port`, async () => {
    const f = await driveFile('dhcp.img', await buildConfigDrive(sampleInput(path.join(dir, 'work-dhcp'), { bootMac: PORTS[1] })));
    const view = await withDriveTree(f, (m) => readWithCloudInit(m, { [PORTS[0]]: 'eth0', [PORTS[1]]: 'eth1' }));
    expect(view.metadata).toMatchObject({ 'instance-id': NODE_UUID, 'local-hostname': 'compute-0.example.internal' });
    expect(view.sshKeys).toEqual([SSH_KEY]);
    expect(view.userdata).toContain('osp-user-data-ran');
    const byName = Object.fromEntries(view.netconfig.config.filter((c) => c.type === 'physical').map((c) => [c.name, c]));
    expect(byName.eth0).toMatchObject({ mac_address: PORTS[0], subnets: [] });
    expect(byName.eth1).toMatchObject({ mac_address: PORTS[1], subnets: [{ type: 'dhcp4' }] });
    expect(view.netconfig.config.filter((c) => c.type === 'nameserver').map((c) => c.address)).toEqual(['10.88.0.1', '10.88.0.2']);
  });

  it(`gives cloud-init the node's static ipv4_address with ospd's prefix and router (files from ${TREE_SOURCE})`, async () => {
    const input = sampleInput(path.join(dir, 'work-static'), { userData: undefined });
    input.node.properties.ipv4Address = '10.88.0.21';
    const f = await driveFile('static.img', await buildConfigDrive(input));
    const view = await withDriveTree(f, (m) => readWithCloudInit(m, { [PORTS[0]]: 'eth0', [PORTS[1]]: 'eth1' }));
    expect(view.userdata).toBe('');
    const eth0 = view.netconfig.config.find((c) => c.name === 'eth0');
    expect(eth0).toMatchObject({
      subnets: [expect.objectContaining({ type: 'static', address: '10.88.0.21', netmask: '255.255.255.0', routes: [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: '10.88.0.1' }] })],
    });
  });

  it('refuses bad input with one line naming the field, the value and what was expected', async () => {
    const work = path.join(dir, 'work-bad');
    const cases: [Partial<Parameters<typeof sampleInput>[1]>, RegExp][] = [
      [{ hostname: 'bad_host!' }, /^hostname: "bad_host!": expected a host name/],
      [{ sshKeys: ['not a key'] }, /^ssh_keys\[0\]: "not a key": expected one OpenSSH public key line/],
      [{ userData: Buffer.alloc(1024 * 1024 + 1) }, /^user_data: "1048577 bytes": expected at most 1048576 bytes/],
      [{ bootMac: '52:54:00:ff:ff:ff' }, /^boot_mac: "52:54:00:ff:ff:ff": expected one of the node's ports/],
      [{ metadata: { role: 7 as unknown as string } }, /^metadata\.role: 7: expected a string/],
      [{ node: { uuid: NODE_UUID, name: 'n', ports: PORTS, properties: { ipv4Address: '10.88.0.9' } }, dhcp: {} }, /^dhcp\.prefix_length: undefined: expected the provisioning subnet's prefix length/],
    ];
    for (const [over, re] of cases) {
      const e = await buildConfigDrive(sampleInput(work, over)).then(() => null, (x: unknown) => x);
      expect(isOspError(e) && e.code === 'CONFIG_DRIVE_INVALID', String(e)).toBe(true);
      expect((e as Error).message).toMatch(re);
      expect((e as Error).message).not.toContain('\n');
    }
  });
});

describe('the config drive of a node registered in a real ospd', () => {
  const ospd = new OspdProcess();
  afterAll(() => ospd.dispose());

  it('holds the fresh node token and neither the admin token nor the BMC password', async () => {
    await ospd.start();
    const bmcPassword = 'Bmc-Secret-7f3a9c';
    const nodes = path.join(dir, 'nodes.json');
    writeFileSync(nodes, JSON.stringify({ nodes: [{ name: 'compute-7', pm_type: 'ipmi', pm_addr: '192.0.2.7', pm_user: 'admin', pm_password: bmcPassword, mac: [PORTS[0]] }] }));
    const imported = await ospd.ctl(['node', 'import', nodes]);
    expect(imported.code, imported.stderr).toBe(0);
    const cfg = await ospd.ctl(['node', 'agent-config', 'compute-7']);
    expect(cfg.code, cfg.stderr).toBe(0);
    const nodeToken = (YAML.parse(cfg.stdout) as { token: string }).token;
    const shown = await ospd.ctl(['node', 'show', 'compute-7', '-f', 'json']);
    expect(shown.code, shown.stderr).toBe(0);
    const n = JSON.parse(shown.stdout) as { uuid: string; name: string; ports: string[] };
    // A caller handing over the whole record, BMC credentials included, must not leak them either.
    const node = { uuid: n.uuid, name: n.name, ports: n.ports ?? [PORTS[0]], properties: {}, driverInfo: { ipmi_password: bmcPassword } };
    const bytes = await buildConfigDrive(sampleInput(path.join(ospd.dataDir, 'provision'), { node, agentYaml: cfg.stdout }));
    const adminToken = ospd.admin().token;
    expect(adminToken.length).toBeGreaterThan(16);
    expect(bytes.includes(Buffer.from(nodeToken))).toBe(true);
    expect(bytes.includes(Buffer.from(adminToken))).toBe(false);
    expect(bytes.includes(Buffer.from(bmcPassword))).toBe(false);
  });
});
