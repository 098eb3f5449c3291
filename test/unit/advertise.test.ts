import { describe, expect, it } from 'vitest';
import { hostPort, listenerHost, machineFacingHost } from '../../server/advertise.js';
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
