/**
 * The iPXE script a machine gets from `GET /boot.ipxe?mac=`, derived from its
 * node record at request time. Nothing secret goes into a script or kernel
 * command line: they travel in clear and land in logs. The agent finds the
 * server by osp.server and trusts it by the CA fingerprint osp.ca_sha256.
 */
import { RAMDISK_STATES } from '../../nodes/states.js';
import type { PxeNode } from '../types.js';

export interface BootScriptOptions {
  /** Base of this HTTP service as machines reach it, e.g. `http://10.213.0.1:8080`. */
  httpBaseUrl: string;
  /** What the agent connects to, e.g. `10.213.0.1:6385`. */
  serverAddress: string;
  /** sha256 of ospd's CA certificate (hex), pinned by the agent. */
  caSha256: string;
  discovery: boolean;
  /**
   * Where the ramdisk is fetched from, default `httpBaseUrl`. A `tftp://host:port`
   * base serves kernel and initramfs over TFTP (for networks where HTTP is blocked).
   */
  ramdiskBaseUrl?: string;
  /** URL paths of the ramdisk, default `/ramdisk.kernel` and `/ramdisk.initramfs`. */
  kernelPath?: string;
  initramfsPath?: string;
  /** Extra kernel arguments (e.g. `console=ttyS0`). Must not carry secrets. */
  extraKernelArgs?: string;
  /** Seconds between retries when a fetch fails. */
  retryDelaySec?: number;
}

export type BootScriptKind = 'ramdisk' | 'discovery' | 'local' | 'not-enrolled' | 'no-ramdisk';

/** iPXE treats `${…}` and whitespace specially; node names are DNS labels but we never trust input. */
function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9._:@/+-]/g, '_');
}

function ramdisk(o: BootScriptOptions, mac: string, banner: string, hints: string[]): string {
  const from = o.ramdiskBaseUrl ?? o.httpBaseUrl;
  const kernel = `${from}${o.kernelPath ?? '/ramdisk.kernel'}`;
  const initrd = `${from}${o.initramfsPath ?? '/ramdisk.initramfs'}`;
  const args = [
    'initrd=ramdisk.initramfs', `osp.server=${safe(o.serverAddress)}`, `osp.ca_sha256=${safe(o.caSha256)}`, `osp.mac=${mac}`,
    // BOOTIF is the pxelinux convention the agent (and IPA) use to find the boot NIC.
    `BOOTIF=01-${mac.replace(/:/g, '-')}`, ...hints, ...(o.extraKernelArgs ? [o.extraKernelArgs] : []),
  ].join(' ');
  const delay = o.retryDelaySec ?? 5;
  return [
    '#!ipxe',
    `echo osp: ${banner}`,
    ':fetch',
    `kernel ${kernel} ${args} || goto failed`,
    `initrd --name ramdisk.initramfs ${initrd} || goto failed`,
    'boot || goto failed',
    ':failed',
    `echo osp: could not fetch or boot the ramdisk from ${from}; retrying in ${delay} s`,
    `sleep ${delay}`,
    'goto fetch',
    '',
  ].join('\n');
}

export function renderBootScript(node: PxeNode | null, mac: string, o: BootScriptOptions): { kind: BootScriptKind; script: string } {
  if (!node) {
    if (o.discovery) return { kind: 'discovery', script: ramdisk(o, mac, `unknown machine ${mac}: booting the discovery ramdisk`, ['osp.discovery=1']) };
    return {
      kind: 'not-enrolled',
      script: ['#!ipxe', `echo osp: ${mac} is not enrolled and discovery is off: nothing to boot from the network`,
        'echo osp: enrol it (ospctl node create / import) or enable --discovery; continuing with the next boot device', 'sleep 10', 'exit 1', ''].join('\n'),
    };
  }
  const state = node.provisionState;
  if (RAMDISK_STATES.includes(state)) {
    return { kind: 'ramdisk', script: ramdisk(o, mac, `node ${safe(node.name)} (${safe(state)}): booting the ramdisk`, [`osp.node_uuid=${safe(node.uuid)}`]) };
  }
  return {
    kind: 'local',
    script: ['#!ipxe', `echo osp: node ${safe(node.name)} is ${safe(state)}: booting from the local disk`,
      // UEFI firmware moves to its next boot entry on exit; on BIOS, sanboot the first disk.
      'iseq ${platform} efi && exit 0 ||', 'sanboot --no-describe --drive 0x80 || exit 0', ''].join('\n'),
  };
}

/**
 * What a machine that should boot the ramdisk gets while ospd has none: the
 * reason on its console, then the same script again after a pause, so it
 * boots by itself once the operator has built the ramdisk.
 */
export function noRamdiskScript(mac: string, missing: string[], o: BootScriptOptions): string {
  const delay = Math.max(o.retryDelaySec ?? 5, 30);
  return [
    '#!ipxe',
    `echo osp: ospd has no ramdisk to boot ${mac} into: missing ${missing.map(safe).join(', ')}`,
    "echo osp: build it with: osp-image build -t ramdisk -o <http-root>/ramdisk ramdisk osp-agent",
    `echo osp: asking again in ${delay} s`,
    `sleep ${delay}`,
    `chain --replace ${o.httpBaseUrl}/boot.ipxe?mac=${mac}`,
    '',
  ].join('\n');
}
