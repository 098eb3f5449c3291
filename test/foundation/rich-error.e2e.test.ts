import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OspdProcess, REPO, runProgram } from '../harness/ospd.js';
import { decodeRichStatus } from '../../common/rich-status.js';

const here = path.dirname(new URL(import.meta.url).pathname);
const work = mkdtempSync(path.join(os.tmpdir(), 'osp-rich-error-'));

interface Refusal {
  code: string;
  message: string;
  details_hex: string | null;
  status_code: number;
  status_message: string;
  reason: string;
  domain: string;
  metadata: Record<string, string>;
  violations: { field: string; description: string }[];
  type_urls: string[];
}

describe('errors in the gRPC rich error model, read by a Python grpcio client', () => {
  const ospd = new OspdProcess();
  let out: Record<'create' | 'import' | 'missing', Refusal>;

  beforeAll(async () => {
    await ospd.start();
    const admin = ospd.admin();
    const caFile = path.join(work, 'ca.pem');
    writeFileSync(caFile, admin.ca);
    const r = await runProgram('/usr/bin/python3', [path.join(here, 'rich_error_client.py'), admin.server, caFile, admin.token,
      path.join(REPO, 'proto/gen/osp.binpb'), path.join(here, 'proto')], { timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    out = JSON.parse(r.stdout);
  }, 90_000);
  afterAll(async () => {
    await ospd.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it('CreateNode with a bad MAC: ErrorInfo reason NODE_INVALID, a BadRequest violation on ports', () => {
    const c = out.create;
    expect(c.code).toBe('INVALID_ARGUMENT');
    expect(c.status_code).toBe(3);
    expect(c.type_urls).toEqual(['type.googleapis.com/google.rpc.ErrorInfo', 'type.googleapis.com/google.rpc.BadRequest']);
    expect(c).toMatchObject({ reason: 'NODE_INVALID', domain: 'osp' });
    expect(c.violations).toEqual([{ field: 'ports', description: 'ports: "52:54:00:zz:00:01": expected a MAC address like 52:54:00:12:34:56' }]);
  });

  it('an import with two bad entries: one violation per entry, each naming its field by path', () => {
    const i = out.import;
    expect(i.reason).toBe('NODE_IMPORT_INVALID');
    expect(i.violations.map((v) => v.field)).toEqual(['nodes[0].pm_type', 'nodes[1].mac[0]']);
    expect(i.violations[0].description).toMatch(/^nodes\[0\] \(py-1\): pm_type: "telepathy": expected one of ipmi, /);
    expect(i.violations[1].description).toBe('nodes[1] (py-2): mac[0]: "not-a-mac": expected a MAC address like 52:54:00:12:34:56');
    expect(i.message.split('\n')).toEqual(i.violations.map((v) => v.description));
  });

  it('a refusal about a named thing carries it in ErrorInfo metadata, with no BadRequest', () => {
    const m = out.missing;
    expect(m.code).toBe('NOT_FOUND');
    expect(m).toMatchObject({ reason: 'NODE_NOT_FOUND', metadata: { node: 'no-such-node' }, violations: [] });
  });

  it('ospctl still prints every problem of an import too big for the details', async () => {
    const file = path.join(work, 'many.json');
    writeFileSync(file, JSON.stringify({ nodes: Array.from({ length: 120 }, (_, i) => ({ name: `m-${i}`, pm_type: 'telepathy', pm_addr: `192.0.2.${i + 1}` })) }));
    const r = await ospd.ctl(['node', 'import', file]);
    expect(r.code).toBe(1);
    const lines = r.stderr.replace(/^ospctl: /, '').trim().split('\n');
    expect(lines).toHaveLength(120);
    expect(lines[119]).toMatch(/^nodes\[119\] \(m-119\): pm_type: "telepathy": expected one of /);
  });

  it("osp's decoder reads the bytes as the Python client received them", () => {
    const s = decodeRichStatus(Buffer.from(out.import.details_hex!, 'hex'));
    expect(s.code).toBe(3);
    expect(s.errorInfo).toEqual({ reason: 'NODE_IMPORT_INVALID', domain: 'osp', metadata: {} });
    expect(s.fieldViolations).toEqual(out.import.violations);
  });
});
