import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OspdProcess } from '../harness/ospd.js';

// ospd is only told about 10.88.0.1; nothing is ever sent there.
describe('an advertised address no listener serves, through a real ospd and ospctl', () => {
  const ospd = new OspdProcess(undefined, ['--advertise-address', '10.88.0.1']);
  beforeAll(() => ospd.start(), 60_000);
  afterAll(() => ospd.dispose());

  it('is warned about at start, naming the bound port', () => {
    const warn = ospd.log().split('\n').find((l) => l.includes('"level":40') && l.includes('grpc-listen binds'));
    expect(warn, ospd.log()).toContain(`machines are told to reach the gRPC API at 10.88.0.1:${ospd.port}, but grpc-listen binds 127.0.0.1:${ospd.port} only`);
  });

  it('shows in ospctl pxe status, as a table and as JSON', async () => {
    const table = await ospd.ctl(['pxe', 'status']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(`WARNING: machines are told to reach the gRPC API at 10.88.0.1:${ospd.port}`);
    const json = await ospd.ctl(['pxe', 'status', '-f', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const warnings = (JSON.parse(json.stdout) as { warnings: string[] }).warnings;
    expect(warnings.some((w) => w.includes('grpc-listen binds'))).toBe(true);
    expect(warnings.some((w) => w.includes('http-listen binds'))).toBe(true);
  });
});

describe('listeners.json', () => {
  const ospd = new OspdProcess();
  beforeAll(() => ospd.start(), 60_000);
  afterAll(() => ospd.dispose());

  it('names the ports actually bound for listen flags with port 0, and the HTTP one answers', async () => {
    const l = ospd.listeners!;
    for (const p of [ospd.port, l.mqtt.tls, l.mqtt.plain]) expect(p).toBeGreaterThan(0);
    for (const s of ['http', 'tftp']) expect(Number(/:(\d+)$/.exec(l.pxe[s])![1]), s).toBeGreaterThan(0);
    const res = await fetch(`http://${l.pxe.http}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('ospd_');
  });
});
