/** IPv4 address arithmetic for the provisioning subnet (32-bit unsigned integers). */

export function ipToInt(ip: string, field = 'address'): number {
  const parts = ip.split('.');
  const nums = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (nums.length !== 4 || nums.some((n) => !(n >= 0 && n <= 255))) {
    throw new RangeError(`${field}: "${ip}" is not a dotted-quad IPv4 address`);
  }
  return ((nums[0] << 24) | (nums[1] << 16) | (nums[2] << 8) | nums[3]) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Subnet {
  network: number;
  mask: number;
  prefixLength: number;
}

export function subnetOf(address: string, netmask: string): Subnet {
  const mask = ipToInt(netmask, 'netmask');
  const prefixLength = 32 - Math.log2((~mask >>> 0) + 1);
  if (!Number.isInteger(prefixLength)) throw new RangeError(`netmask: "${netmask}" is not a contiguous mask`);
  return { network: (ipToInt(address) & mask) >>> 0, mask, prefixLength };
}

export function inSubnet(ip: string, s: Subnet): boolean {
  return ((ipToInt(ip) & s.mask) >>> 0) === s.network;
}

export function broadcastOf(s: Subnet): string {
  return intToIp((s.network | (~s.mask >>> 0)) >>> 0);
}
