import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface InterfaceIpv4 {
  address: string;
  netmask: string;
}

function prefixToNetmask(prefixLength: number): string {
  const bits = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 255).join('.');
}

/**
 * The first IPv4 address of an interface. os.networkInterfaces() (libuv)
 * leaves out interfaces that are up but have no carrier (not IFF_RUNNING): a
 * provisioning NIC whose switch port is still down when ospd starts, or a
 * bridge before any machine is plugged in. Those still own their address and
 * DHCP must serve once the link comes up, so iproute2 is asked as a fallback.
 */
export function interfaceIpv4(name: string): InterfaceIpv4 | null {
  const v4 = os.networkInterfaces()[name]?.find((a) => a.family === 'IPv4');
  if (v4) return { address: v4.address, netmask: v4.netmask };
  try {
    const out = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', name], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    const info = (JSON.parse(out) as { addr_info?: { local?: string; prefixlen?: number }[] }[])[0]?.addr_info?.find((a) => a.local);
    return info?.local && typeof info.prefixlen === 'number' ? { address: info.local, netmask: prefixToNetmask(info.prefixlen) } : null;
  } catch {
    // No such interface, or no iproute2: the caller reports the interface as unusable.
    return null;
  }
}
