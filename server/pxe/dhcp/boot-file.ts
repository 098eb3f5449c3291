/**
 * Decides what a network-booting client is told to load, from what it says
 * about itself: RFC 4578 §2.1 option 93 (client architecture), option 77 user
 * class / option 175 (iPXE already running), option 60 vendor class
 * (`PXEClient…` firmware PXE, `HTTPClient…` UEFI HTTP boot, UEFI spec §24.7).
 */
import { Opt } from './packet.js';

export interface BootTargets {
  /** Address of the TFTP server (siaddr / option 66). */
  tftpServer: string;
  /** e.g. `http://10.213.0.1:8080`, no trailing slash. */
  httpBaseUrl: string;
  /** BIOS PXE ROMs chain-load this over TFTP. Default `undionly.kpxe`. */
  biosFile?: string;
  /** x86-64 UEFI PXE (arch 7/9). Default `ipxe.efi`; `snponly.efi` uses the firmware's NIC driver. */
  uefiX64File?: string;
  /** arm64 UEFI PXE (arch 11). Default `ipxe-arm64.efi`. */
  uefiArm64File?: string;
}

export type ClientKind = 'ipxe' | 'uefi-http' | 'bios' | 'uefi-x64' | 'uefi-arm64' | 'pxe-unknown-arch' | 'not-pxe';

export interface BootDecision {
  kind: ClientKind;
  /** Boot file (the BOOTP `file` field / option 67), absent when nothing can be offered. */
  file?: string;
  /** Echoed as option 60: PXE spec §2.4 and UEFI HTTP boot require the server to identify itself. */
  vendorClass?: 'PXEClient' | 'HTTPClient';
  /** Client architecture (RFC 4578 §2.1), if sent. */
  arch?: number;
}

function userClassHasIpxe(v: Buffer | undefined): boolean {
  if (!v) return false;
  // RFC 3004 §4 length-prefixed list; iPXE sends it that way, some clients send bare text.
  let i = 0;
  while (i < v.length) {
    const len = v[i];
    if (i + 1 + len > v.length) break;
    if (v.subarray(i + 1, i + 1 + len).toString('latin1') === 'iPXE') return true;
    i += 1 + len;
  }
  return v.toString('latin1') === 'iPXE';
}

export function classifyClient(options: Map<number, Buffer>, mac: string, t: BootTargets): BootDecision {
  const vendor = options.get(Opt.VENDOR_CLASS)?.toString('latin1') ?? '';
  const archBuf = options.get(Opt.CLIENT_ARCH);
  const arch = archBuf && archBuf.length >= 2 ? archBuf.readUInt16BE(0) : undefined;
  const isPxe = vendor.startsWith('PXEClient');
  const isHttp = vendor.startsWith('HTTPClient');
  if (options.has(Opt.IPXE_ENCAP) || userClassHasIpxe(options.get(Opt.USER_CLASS))) {
    return { kind: 'ipxe', file: `${t.httpBaseUrl}/boot.ipxe?mac=${mac}`, vendorClass: isHttp ? 'HTTPClient' : isPxe ? 'PXEClient' : undefined, arch };
  }
  if (isHttp) {
    // RFC 4578 registry: 15 x86 UEFI HTTP, 16 x64 UEFI HTTP, 19 arm64 UEFI HTTP.
    const file = arch === 19 ? (t.uefiArm64File ?? 'ipxe-arm64.efi') : (t.uefiX64File ?? 'ipxe.efi');
    return { kind: 'uefi-http', file: `${t.httpBaseUrl}/${file}`, vendorClass: 'HTTPClient', arch };
  }
  if (!isPxe) return { kind: 'not-pxe', arch };
  switch (arch ?? 0) {
    case 0: return { kind: 'bios', file: t.biosFile ?? 'undionly.kpxe', vendorClass: 'PXEClient', arch: arch ?? 0 };
    case 7:
    case 9: return { kind: 'uefi-x64', file: t.uefiX64File ?? 'ipxe.efi', vendorClass: 'PXEClient', arch };
    case 11: return { kind: 'uefi-arm64', file: t.uefiArm64File ?? 'ipxe-arm64.efi', vendorClass: 'PXEClient', arch };
    default: return { kind: 'pxe-unknown-arch', vendorClass: 'PXEClient', arch };
  }
}
