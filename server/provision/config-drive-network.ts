import { isIP } from 'node:net';
import { OspError } from '../../common/errors.js';
import { normaliseMac } from '../../common/mac.js';
import { intToIp } from '../pxe/dhcp/ipv4.js';
import type { ConfigDriveNode } from './config-drive.js';

/** What the deployed system needs from ospd's DHCP settings (server/config.ts `dhcp-*`). */
export interface DriveDhcp {
  /** Of the provisioning subnet; needed only for a static address. */
  prefixLength?: number;
  router?: string | null;
  dns?: string[];
}

function invalid(field: string, value: unknown, expected: string): never {
  throw new OspError('CONFIG_DRIVE_INVALID', `${field}: ${JSON.stringify(value)}: expected ${expected}`, { field, value, expected });
}

function netmaskOf(prefixLength: number): string {
  return intToIp(prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0);
}

/**
 * network_data.json in the OpenStack format (nova's metadata service, read by
 * cloud-init's `convert_net_json`): every port is a physical link named by
 * its MAC; only the boot port carries a network, the node's static address
 * when it has one (as ospd's DHCP would hand it), DHCP otherwise. The other
 * ports stay unconfigured so the first boot never waits on an unplugged NIC.
 */
export function buildNetworkData(node: ConfigDriveNode, bootMac: string, dhcp: DriveDhcp): Record<string, unknown> {
  const macs = node.ports.map((p) => normaliseMac(p) ?? p);
  const links = macs.map((mac, i) => ({ id: `port-${i}`, type: 'phy', ethernet_mac_address: mac, mtu: null }));
  const link = links[macs.indexOf(bootMac)].id;
  const ip = node.properties.ipv4Address;
  let network: Record<string, unknown>;
  if (ip) {
    const p = dhcp.prefixLength;
    if (p === undefined || !Number.isInteger(p) || p < 1 || p > 32) invalid('dhcp.prefix_length', p, "the provisioning subnet's prefix length (1-32) for the static ipv4_address");
    const routes = [];
    if (dhcp.router) {
      if (isIP(dhcp.router) !== 4) invalid('dhcp.router', dhcp.router, 'an IPv4 address');
      routes.push({ network: '0.0.0.0', netmask: '0.0.0.0', gateway: dhcp.router });
    }
    network = { id: 'network-0', type: 'ipv4', link, ip_address: ip, netmask: netmaskOf(p), routes, network_id: 'provisioning' };
  } else {
    network = { id: 'network-0', type: 'ipv4_dhcp', link, network_id: 'provisioning' };
  }
  const services = (dhcp.dns ?? []).map((address, i) => {
    if (isIP(address) !== 4) invalid(`dhcp.dns[${i}]`, address, 'an IPv4 address');
    return { type: 'dns', address };
  });
  return { links, networks: [network], services };
}
