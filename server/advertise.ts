import { OspError } from '../common/errors.js';
import { isLoopbackHost, type ListenAddress, type OspdConfig } from './config.js';
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

/**
 * Why machines may not reach ospd at the address it hands them: a listener
 * bound to another specific host, or a loopback address on a provisioning
 * network. Without this, a machine boots, is told `osp.server=` where nothing
 * listens, and inspection times out much later with "agent never called back".
 */
export function advertiseProblems(cfg: OspdConfig, machineFacing: string, grpcPort: number): string[] {
  const out: string[] = [];
  const check = (what: string, key: string, l: ListenAddress | null, port: number) => {
    if (!l || wildcard(l) || l.host === machineFacing) return;
    out.push(`machines are told to reach ${what} at ${hostPort(machineFacing, port)}, but ${key} binds ${hostPort(l.host, port)} only: listen on 0.0.0.0 or on ${machineFacing}, or advertise ${l.host}`);
  };
  check('the gRPC API', 'grpc-listen', cfg.grpcListen, grpcPort);
  check('HTTP boot', 'http-listen', cfg.pxe.httpListen, cfg.pxe.httpListen?.port ?? 0);
  if (cfg.pxe.dhcpInterface && isLoopbackHost(machineFacing)) {
    out.push(`machines on ${cfg.pxe.dhcpInterface} are told to reach ospd at ${machineFacing}, a loopback address they cannot reach: set advertise-address to this host's address on ${cfg.pxe.dhcpInterface}`);
  }
  return out;
}
