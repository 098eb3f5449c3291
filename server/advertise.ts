import { OspError } from '../common/errors.js';
import type { ListenAddress, OspdConfig } from './config.js';
import { interfaceIpv4 } from './pxe/interface-address.js';

const wildcard = (a: ListenAddress | null) => !a || a.host === '0.0.0.0' || a.host === '::';

/** host:port with IPv6 hosts in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The one address machines and remote clients use to reach ospd: the first
 * --advertise-address, else the provisioning interface's, else a listener's
 * own specific host, else loopback. Decided once, because the certificate,
 * the DHCP boot file, the iPXE script, the kernel command line and every
 * agent.yaml must all name the same address, and the certificate must cover it.
 */
export function machineFacingHost(cfg: OspdConfig): string {
  if (cfg.advertiseAddresses[0]) return cfg.advertiseAddresses[0];
  const iface = cfg.pxe.dhcpInterface;
  if (iface) {
    const a = interfaceIpv4(iface);
    if (!a) throw new OspError('CONFIG_INVALID', `config: dhcp-interface: ${JSON.stringify(iface)} is not valid: expected an interface with an IPv4 address on this host`, { key: 'dhcp-interface' });
    return a.address;
  }
  for (const l of [cfg.grpcListen, cfg.pxe.httpListen]) if (!wildcard(l)) return l!.host;
  return '127.0.0.1';
}

/** Where a client reaches one listener: its own host when bound to one, else the machine-facing host. */
export function listenerHost(listen: ListenAddress | null, machineFacing: string): string {
  return wildcard(listen) ? machineFacing : listen!.host;
}
