import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeServiceClient } from '../../proto/gen/osp/v1/node.js';
import { OspdProcess, nodeFile, runProgram, OSPD } from '../harness/ospd.js';
import { waitFor } from '../harness/wait.js';

const PASSWORD = 'Hunter2-BMC-Sekret';
const work = mkdtempSync(path.join(os.tmpdir(), 'osp-foundation-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function listNodes(client: NodeServiceClient, md: Metadata): Promise<{ code?: number; details?: string; count?: number }> {
  return new Promise((resolve) => {
    client.listNodes({ provisionState: '', profile: '', driver: '', limit: 0, marker: '' }, md, { deadline: Date.now() + 10_000 }, (e, r) => {
      if (e) resolve({ code: e.code, details: e.details });
      else resolve({ count: r.nodes.length });
    });
  });
}

describe('ospd foundation (real ospd process, ospctl, TLS)', () => {
  const ospd = new OspdProcess();
  const file = path.join(work, 'nodes.json');

  beforeAll(async () => {
    writeFileSync(file, nodeFile(10, { password: PASSWORD }));
    await ospd.start();
  });
  afterAll(async () => {
    await ospd.dispose();
  });

  it('imports 10 nodes, lists them in enroll with masked passwords', async () => {
    const imp = await ospd.ctl(['node', 'import', file, '-f', 'json']);
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    expect(JSON.parse(imp.stdout).filter((r: { result: string }) => r.result === 'created')).toHaveLength(10);

    const list = await ospd.ctl(['node', 'list', '-f', 'json', '--long', '-c', 'name', '-c', 'provision_state', '-c', 'profile']);
    expect(list.code).toBe(0);
    const rows = JSON.parse(list.stdout) as { name: string; provision_state: string; profile: string }[];
    expect(rows.map((r) => r.name).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `node-${i}`).sort());
    expect(rows.every((r) => r.provision_state === 'enroll')).toBe(true);
    expect(rows.filter((r) => r.profile === 'compute')).toHaveLength(5);

    const full = await ospd.ctl(['node', 'list', '-f', 'json', '-c', 'name', '-c', 'driver_info']);
    expect(full.code, full.stderr).toBe(0);
    for (const r of JSON.parse(full.stdout)) expect(r.driver_info.password).toBe('******');
  });

  it('shows one node with every registry field', async () => {
    const r = await ospd.ctl(['node', 'show', 'node-3', '-f', 'json']);
    expect(r.code).toBe(0);
    const n = JSON.parse(r.stdout);
    for (const k of ['uuid', 'name', 'ports', 'driver', 'driver_info', 'properties', 'capabilities', 'root_device', 'provision_state',
      'power_state', 'maintenance', 'maintenance_reason', 'last_error', 'created_at', 'updated_at']) expect(n).toHaveProperty(k);
    expect(n.ports).toEqual(['52:54:00:00:00:03']);
    expect(n.properties).toEqual({ cpus: 4, memory_mb: 8192, local_gb: 100, cpu_arch: 'x86_64' });
    expect(n.capabilities).toEqual({ profile: 'compute', boot_mode: 'uefi' });
    expect(n.power_state).toBe('unknown');
    expect(n.driver_info).toEqual({ address: '192.0.2.4', username: 'admin', password: '******', port: '623' });
  });

  it('re-importing the same file changes nothing', async () => {
    const r = await ospd.ctl(['node', 'import', file, '-f', 'json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { result: string }[];
    expect(rows.every((x) => x.result === 'unchanged')).toBe(true);
  });

  it('pages with a stable order', async () => {
    const a = await ospd.ctl(['node', 'list', '--limit', '4', '-f', 'value', '-c', 'name']);
    expect(a.stdout.trim().split('\n')).toEqual(['node-0', 'node-1', 'node-2', 'node-3']);
    const b = await ospd.ctl(['node', 'list', '--marker', 'node-3', '--limit', '3', '-f', 'value', '-c', 'name']);
    expect(b.stdout.trim().split('\n')).toEqual(['node-4', 'node-5', 'node-6']);
  });

  it('deletes a node', async () => {
    const r = await ospd.ctl(['node', 'delete', 'node-9']);
    expect(r.code).toBe(0);
    const s = await ospd.ctl(['node', 'show', 'node-9']);
    expect(s.code).toBe(1);
    expect(s.stderr).toBe("ospctl: node 'node-9' not found\n");
  });

  it('never writes the BMC password to the database or the log', () => {
    const files = readdirSync(ospd.dataDir).filter((f) => f.startsWith('ospd.sqlite'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(path.join(ospd.dataDir, f)).includes(PASSWORD)).toBe(false);
    expect(ospd.log()).not.toContain(PASSWORD);
    expect(ospd.log()).toContain('node import started');
  });

  it('refuses calls without a token, with a wrong token, and over plain text', async () => {
    const admin = ospd.admin();
    const tls = new NodeServiceClient(admin.server, credentials.createSsl(Buffer.from(admin.ca)));
    const good = new Metadata();
    good.set('authorization', `Bearer ${admin.token}`);
    expect((await listNodes(tls, good)).count).toBe(9);
    const none = await listNodes(tls, new Metadata());
    expect(none.code).toBe(status.UNAUTHENTICATED);
    const wrong = new Metadata();
    wrong.set('authorization', `Bearer ${admin.token.slice(0, -2)}xx`);
    const bad = await listNodes(tls, wrong);
    expect(bad.code).toBe(status.UNAUTHENTICATED);
    expect(bad.details).toBe('authentication required');
    tls.close();

    const plain = new NodeServiceClient(admin.server, credentials.createInsecure());
    const p = await listNodes(plain, good);
    expect(p.code).toBe(status.UNAVAILABLE);
    plain.close();

    const cli = await ospd.ctl(['node', 'list'], { env: { OSPCTL_CONFIG: writeAdmin({ ...admin, token: 'ospa_wrong' }) } });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/refused the admin token/);
  });

  it('a Python gRPC client lists nodes through reflection-discovered descriptors', async () => {
    const admin = ospd.admin();
    const caFile = path.join(work, 'ca.pem');
    writeFileSync(caFile, admin.ca);
    const r = await runProgram('/usr/bin/python3', [path.join(__dirname, 'reflection_client.py'), admin.server, caFile, admin.token,
      path.resolve('node_modules/@grpc/reflection/build/proto')], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.services).toContain('osp.v1.NodeService');
    expect(out.names).toHaveLength(9);
    expect(out.names).toContain('node-0');
    expect(out.passwords).toEqual(Array(9).fill('******'));
  });

  it('rotates the admin token: the old one is refused at once, both configs carry the new one, and it survives a restart', async () => {
    const before = ospd.admin();
    // An operator's own copy of the config, with a comment that must survive the update.
    const copy = path.join(work, 'operator.yaml');
    writeFileSync(copy, `# my workstation\nserver: ${before.server}\nca: ${JSON.stringify(before.ca)}\ntoken: ${before.token}\n`, { mode: 0o644 });
    const stale = writeAdmin(before);
    const r = await ospd.ctl(['admin', 'rotate-token', '-f', 'json'], { env: { OSPCTL_CONFIG: copy } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ config: copy, server_config: ospd.adminConfig });
    const updated = readFileSync(copy, 'utf8');
    expect(updated).toContain('# my workstation');
    const token = /^token: (\S+)$/m.exec(updated)![1];
    expect(token).not.toBe(before.token);
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    expect(ospd.admin().token).toBe(token);
    expect(statSync(ospd.adminConfig).mode & 0o777).toBe(0o600);

    const refused = await ospd.ctl(['node', 'list'], { env: { OSPCTL_CONFIG: stale } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused the admin token/);
    expect((await ospd.ctl(['node', 'list', '-f', 'value', '-c', 'name'], { env: { OSPCTL_CONFIG: copy } })).code).toBe(0);
    expect(ospd.log()).toContain('admin token rotated');
    expect(ospd.log()).not.toContain(token);

    expect(await ospd.stop()).toBe(0);
    await ospd.start();
    // The harness listens on port 0, so the restarted server is reached through its rewritten admin.yaml.
    expect(ospd.admin().token).toBe(token);
    expect((await ospd.ctl(['node', 'list'], { env: { OSPCTL_CONFIG: writeAdmin({ ...ospd.admin(), token: before.token }) } })).code).toBe(1);
    expect((await ospd.ctl(['node', 'list'])).code).toBe(0);
  });

  it('keeps every node across a restart, and a SIGTERM exits 0', async () => {
    expect(await ospd.stop('SIGTERM')).toBe(0);
    expect(ospd.log()).toContain('"msg":"ospd stopped"');
    await ospd.start();
    const r = await ospd.ctl(['node', 'list', '-f', 'value', '-c', 'name']);
    expect(r.stdout.trim().split('\n')).toHaveLength(9);
  });
});

function writeAdmin(doc: object): string {
  const f = path.join(work, `admin-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, JSON.stringify(doc));
  return f;
}

describe('ospd atomicity and bad input', () => {
  it('a SIGKILL mid-import leaves all of that import or none of it', async () => {
    const ospd = new OspdProcess();
    await ospd.start();
    const big = path.join(work, 'big.json');
    const count = 4000;
    writeFileSync(big, nodeFile(count, { prefix: 'bulk', macBase: 100_000 }));
    const importing = ospd.ctl(['node', 'import', big], { timeoutMs: 120_000 });
    await waitFor('node import started', () => ospd.log().includes('node import started'), { timeoutMs: 60_000, intervalMs: 5 });
    // Let the import run a little so the kill lands in the middle of it.
    await new Promise((r) => setTimeout(r, 150));
    await ospd.stop('SIGKILL');
    const cli = await importing;
    await ospd.start();
    const r = await ospd.ctl(['node', 'list', '-f', 'value', '-c', 'name'], { timeoutMs: 60_000 });
    const n = r.stdout.trim() ? r.stdout.trim().split('\n').length : 0;
    expect([0, count]).toContain(n);
    // The kill landed before the import answered, so the transaction was cut, not finished.
    if (cli.code !== 0) expect(n).toBe(0);
    await ospd.dispose();
  }, 180_000);

  it('rejects a bad node file whole, one line per problem', async () => {
    const ospd = new OspdProcess();
    await ospd.start();
    const bad = path.join(work, 'bad.json');
    writeFileSync(bad, JSON.stringify({
      nodes: [
        { name: 'good-0', pm_type: 'ipmi', pm_addr: '192.0.2.10', pm_user: 'u', pm_password: 'p', mac: ['52:54:00:aa:00:01'] },
        { name: 'dup-mac', pm_type: 'ipmi', pm_addr: '192.0.2.11', pm_user: 'u', pm_password: 'p', mac: ['52:54:00:AA:00:01'] },
        { name: 'bad-type', pm_type: 'telepathy', pm_addr: '192.0.2.12', mac: ['52:54:00:aa:00:03'] },
        { name: 'Not_A_DNS_Name', pm_type: 'ipmi', pm_addr: '192.0.2.13', mac: ['52:54:00:aa:00:04'] },
        { name: 'no-addr', pm_type: 'redfish', pm_user: 'u', pm_password: 'p', mac: ['52:54:00:aa:00:05'] },
      ],
    }));
    const r = await ospd.ctl(['node', 'import', bad]);
    expect(r.code).toBe(1);
    const lines = r.stderr.replace(/^ospctl: /, '').trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe('nodes[1] (dup-mac): mac: "52:54:00:aa:00:01": expected a MAC not already used by nodes[0]');
    expect(lines[1]).toMatch(/^nodes\[2\] \(bad-type\): pm_type: "telepathy": expected one of ipmi, /);
    expect(lines[2]).toMatch(/^nodes\[3\] \(Not_A_DNS_Name\): name: "Not_A_DNS_Name": expected a DNS label/);
    expect(lines[3]).toBe('nodes[4] (no-addr): pm_addr: missing: expected the BMC address for pm_type redfish');
    const list = await ospd.ctl(['node', 'list', '-f', 'json']);
    expect(JSON.parse(list.stdout)).toEqual([]);
    await ospd.dispose();
  });

  it('bad configuration: one line naming the key, exit 2', async () => {
    const cfg = path.join(work, 'bad.yaml');
    writeFileSync(cfg, 'grpc-listen: "localhost:99999"\n');
    const r = await runProgram(process.execPath, [OSPD, '--config', cfg, '--data-dir', path.join(work, 'never')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('ospd: config: grpc-listen: "localhost:99999" is not valid: expected a port from 0 (any free port) to 65535\n');
    writeFileSync(cfg, 'grpc-lisen: 127.0.0.1:1\n');
    const u = await runProgram(process.execPath, [OSPD, '--config', cfg]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/unknown key 'grpc-lisen'/);
  });

  it('ospctl reports an unreachable server and usage errors with the right exit codes', async () => {
    const ospd = new OspdProcess();
    await ospd.start();
    await ospd.stop();
    const r = await ospd.ctl(['node', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ospctl: cannot reach ospd at 127\.0\.0\.1:\d+: connection refused/);
    const u = await ospd.ctl(['node', 'list', '--frobnicate']);
    expect(u.code).toBe(2);
    expect(u.stderr.split('\n')).toHaveLength(2);
    const h = await ospd.ctl(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/node\s+register and manage bare-metal nodes/);
    const nh = await ospd.ctl(['node', '--help']);
    expect(nh.stdout).toMatch(/import \[options\] <file>\s+register nodes from a TripleO/);
    await ospd.dispose();
  });
});
