import { describe, expect, it } from 'vitest';
import { advertiseProblems, hostPort, listenerHost, machineFacingHost } from '../../server/advertise.js';
import { explainTimeout } from '../../server/inspection/explain.js';
import { certificateNames, resolveConfig } from '../../server/config.js';

const cfg = (flags: Record<string, string | string[]>) => resolveConfig({}, { 'data-dir': '/tmp/osp-advertise-test', ...flags });

describe('the machine-facing address', () => {
  it('prefers --advertise-address, then the provisioning interface, then a specific listener host, then loopback', () => {
    expect(machineFacingHost(cfg({ 'advertise-address': ['192.0.2.9'], 'dhcp-interface': 'lo', 'dhcp-range': '127.0.0.100,127.0.0.200' }))).toBe('192.0.2.9');
    expect(machineFacingHost(cfg({ 'dhcp-interface': 'lo', 'dhcp-range': '127.0.0.100,127.0.0.200' }))).toBe('127.0.0.1');
    expect(machineFacingHost(cfg({ 'grpc-listen': '192.0.2.5:6385' }))).toBe('192.0.2.5');
    expect(machineFacingHost(cfg({ 'http-listen': '192.0.2.6:8080' }))).toBe('192.0.2.6');
    expect(machineFacingHost(cfg({}))).toBe('127.0.0.1');
  });

  it('refuses a provisioning interface without an IPv4 address, naming the key', () => {
    expect(() => machineFacingHost(cfg({ 'dhcp-interface': 'osp-no-such0', 'dhcp-range': '10.0.0.1,10.0.0.2' })))
      .toThrow('config: dhcp-interface: "osp-no-such0" is not valid: expected an interface with an IPv4 address on this host');
  });

  it('is covered by the server certificate, and clients use it for wildcard listeners only', () => {
    const c = cfg({ 'grpc-listen': '0.0.0.0:6385' });
    expect(certificateNames(c, '198.51.100.7')).toContain('198.51.100.7');
    expect(listenerHost(c.grpcListen, '198.51.100.7')).toBe('198.51.100.7');
    expect(listenerHost({ host: '127.0.0.1', port: 1 }, '198.51.100.7')).toBe('127.0.0.1');
    expect(hostPort('fd00::1', 6385)).toBe('[fd00::1]:6385');
  });
});

describe('an advertised address no listener serves', () => {
  it("is named for gRPC and HTTP, with the key to change, as in the issue's example", () => {
    const c = cfg({ 'grpc-listen': '127.0.0.1:6385', 'advertise-address': ['10.88.0.1'], 'http-listen': '127.0.0.1:8080' });
    const problems = advertiseProblems(c, machineFacingHost(c), 6385);
    expect(problems).toEqual([
      'machines are told to reach the gRPC API at 10.88.0.1:6385, but grpc-listen binds 127.0.0.1:6385 only: listen on 0.0.0.0 or on 10.88.0.1, or advertise 127.0.0.1',
      'machines are told to reach HTTP boot at 10.88.0.1:8080, but http-listen binds 127.0.0.1:8080 only: listen on 0.0.0.0 or on 10.88.0.1, or advertise 127.0.0.1',
    ]);
  });

  it('uses the port actually bound, and says nothing for wildcard or matching listeners', () => {
    expect(advertiseProblems(cfg({ 'grpc-listen': '127.0.0.1:0', 'advertise-address': ['10.88.0.1'], 'http-listen': 'off' }), '10.88.0.1', 41234))
      .toEqual([expect.stringContaining('10.88.0.1:41234, but grpc-listen binds 127.0.0.1:41234 only')]);
    expect(advertiseProblems(cfg({ 'advertise-address': ['10.88.0.1'] }), '10.88.0.1', 6385)).toEqual([]);
    expect(advertiseProblems(cfg({ 'grpc-listen': '10.88.0.1:6385', 'http-listen': '10.88.0.1:8080', 'advertise-address': ['10.88.0.1'] }), '10.88.0.1', 6385)).toEqual([]);
  });

  it('flags a loopback address handed to machines on a provisioning interface', () => {
    const c = cfg({ 'dhcp-interface': 'lo', 'dhcp-range': '127.0.0.100,127.0.0.200' });
    expect(advertiseProblems(c, machineFacingHost(c), 6385)).toEqual([expect.stringContaining('a loopback address they cannot reach')]);
  });

  it("is added to a timeout's explanation only when the agent never called back", () => {
    const facts = { lookups: 0, streams: 0 } as Parameters<typeof explainTimeout>[0]['facts'];
    const base = { waitState: 'inspect wait' as const, timeoutMs: 60_000, macs: ['52:54:00:00:00:01'], facts, advertiseProblems: ['grpc-listen binds 127.0.0.1:6385 only'] };
    expect(explainTimeout(base)).toMatch(/never called back .*; note: grpc-listen binds 127\.0\.0\.1:6385 only$/);
    expect(explainTimeout({ ...base, facts: { ...facts, lookups: 1 } })).not.toContain('note:');
  });
});
