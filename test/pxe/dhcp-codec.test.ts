/** Codec and client-classification units (the wire behaviour is covered by dhcp.test.ts with real clients). */
import { describe, expect, it } from 'vitest';
import { DhcpDecodeError, Opt, decode, encode, type DhcpPacket } from '../../server/pxe/dhcp/packet.js';
import { classifyClient } from '../../server/pxe/dhcp/boot-file.js';
import { corpus } from './dhcp-corpus.js';

const targets = { tftpServer: '10.213.0.1', httpBaseUrl: 'http://10.213.0.1:8080' };
const opts = (entries: Array<[number, Buffer]>) => new Map<number, Buffer>(entries);
const arch = (n: number) => Buffer.from([n >> 8, n & 255]);

describe('classifyClient', () => {
  it.each([
    ['BIOS PXE', opts([[Opt.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001')], [Opt.CLIENT_ARCH, arch(0)]]), 'bios', 'undionly.kpxe'],
    ['x86-64 UEFI PXE (7)', opts([[Opt.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00007:UNDI:003016')], [Opt.CLIENT_ARCH, arch(7)]]), 'uefi-x64', 'ipxe.efi'],
    ['x86-64 UEFI PXE (9)', opts([[Opt.VENDOR_CLASS, Buffer.from('PXEClient')], [Opt.CLIENT_ARCH, arch(9)]]), 'uefi-x64', 'ipxe.efi'],
    ['arm64 UEFI PXE', opts([[Opt.VENDOR_CLASS, Buffer.from('PXEClient')], [Opt.CLIENT_ARCH, arch(11)]]), 'uefi-arm64', 'ipxe-arm64.efi'],
    ['UEFI HTTP boot', opts([[Opt.VENDOR_CLASS, Buffer.from('HTTPClient:Arch:00016:UNDI:003001')], [Opt.CLIENT_ARCH, arch(16)]]), 'uefi-http', 'http://10.213.0.1:8080/ipxe.efi'],
    ['iPXE by user class', opts([[Opt.VENDOR_CLASS, Buffer.from('PXEClient')], [Opt.USER_CLASS, Buffer.from('\x04iPXE', 'latin1')]]), 'ipxe', 'http://10.213.0.1:8080/boot.ipxe?mac=52:54:00:00:00:01'],
    ['iPXE by option 175', opts([[Opt.IPXE_ENCAP, Buffer.from([1, 1, 1])]]), 'ipxe', 'http://10.213.0.1:8080/boot.ipxe?mac=52:54:00:00:00:01'],
    ['unknown arch', opts([[Opt.VENDOR_CLASS, Buffer.from('PXEClient')], [Opt.CLIENT_ARCH, arch(42)]]), 'pxe-unknown-arch', undefined],
    ['not a PXE client', opts([]), 'not-pxe', undefined],
  ])('%s', (_name, o, kind, file) => {
    const d = classifyClient(o, '52:54:00:00:00:01', targets);
    expect(d.kind).toBe(kind);
    expect(d.file).toBe(file);
  });

  it('echoes HTTPClient for UEFI HTTP boot and honours snponly.efi', () => {
    expect(classifyClient(opts([[Opt.VENDOR_CLASS, Buffer.from('HTTPClient')]]), 'x', targets).vendorClass).toBe('HTTPClient');
    expect(classifyClient(opts([[Opt.VENDOR_CLASS, Buffer.from('PXEClient')], [Opt.CLIENT_ARCH, arch(7)]]), 'x', { ...targets, uefiX64File: 'snponly.efi' }).file).toBe('snponly.efi');
  });
});

describe('codec', () => {
  const packet: DhcpPacket = {
    op: 2, htype: 1, hlen: 6, hops: 0, xid: 0xdeadbeef, secs: 0, flags: 0x8000, ciaddr: '0.0.0.0', yiaddr: '10.213.0.100', siaddr: '10.213.0.1',
    giaddr: '0.0.0.0', chaddr: '52:54:00:00:00:01', sname: '', file: 'undionly.kpxe',
    options: opts([[Opt.MESSAGE_TYPE, Buffer.from([2])], [Opt.DOMAIN, Buffer.alloc(600, 0x61)]]),
  };

  it('round-trips, splitting options over 255 octets (RFC 3396) and padding to 300 octets', () => {
    const wire = encode(packet);
    expect(wire.length).toBeGreaterThanOrEqual(300);
    const back = decode(Buffer.from([1, ...wire.subarray(1)]));
    expect(back).toMatchObject({ xid: 0xdeadbeef, yiaddr: '10.213.0.100', chaddr: '52:54:00:00:00:01', file: 'undionly.kpxe', flags: 0x8000 });
    expect(back.options.get(Opt.DOMAIN)!.equals(Buffer.alloc(600, 0x61))).toBe(true);
  });

  it('rejects every corpus entry with a DhcpDecodeError or a missing message type, never another exception', () => {
    for (const { name, bytes } of corpus('52:54:00:00:00:01')) {
      try {
        const p = decode(bytes);
        const t = p.options.get(Opt.MESSAGE_TYPE);
        expect(!t || t.length !== 1 || t[0] < 1 || t[0] > 8, name).toBe(true);
      } catch (e) {
        expect(e, name).toBeInstanceOf(DhcpDecodeError);
      }
    }
  });

  it('names the field and value when encoding bad input', () => {
    expect(() => encode({ ...packet, yiaddr: '10.213.0.300' })).toThrow('yiaddr: "10.213.0.300" is not a dotted-quad IPv4 address');
  });
});
