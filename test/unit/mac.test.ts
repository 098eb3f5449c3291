import { describe, expect, it } from 'vitest';
import { bootifMac, formatMac, normaliseMac } from '../../common/mac.js';
import { parseNodeFile } from '../../server/nodes/import-file.js';
import { applyPatch } from '../../server/nodes/patch.js';
import type { NodeRecord } from '../../server/nodes/model.js';
import { normaliseLookup } from '../../server/inspection/lookup.js';

describe('MAC addresses', () => {
  it('normalises the common spellings to lower-case colon form', () => {
    expect(normaliseMac('52:54:00:AB:CD:EF')).toBe('52:54:00:ab:cd:ef');
    expect(normaliseMac('52-54-00-ab-cd-ef')).toBe('52:54:00:ab:cd:ef');
    expect(normaliseMac('5254.00ab.cdef')).toBe('52:54:00:ab:cd:ef');
    expect(normaliseMac('525400ABCDEF')).toBe('52:54:00:ab:cd:ef');
    expect(normaliseMac(' 52:54:00:ab:cd:ef\n')).toBe('52:54:00:ab:cd:ef');
  });

  it('refuses mixed separators, wrong lengths, non-hex digits and non-strings', () => {
    for (const bad of ['52:54-00:ab:cd:ef', '52:54:00.ab:cd:ef', '5254:00ab:cdef', '52:54:00:ab:cd', '52:54:00:ab:cd:ef:01',
      '52:54:00:ab:cd:eg', '5254.00abcdef', '52::54:00:ab:cd:ef', '', 42, null, undefined]) {
      expect(normaliseMac(bad), String(bad)).toBeNull();
    }
  });

  it('names the field and the value when operator input is refused', () => {
    const file = JSON.stringify({ nodes: [{ name: 'n1', pm_type: 'fake', mac: ['52:54-00:ab:cd:ef'] }] });
    expect(parseNodeFile(file).problems).toEqual([
      { field: 'nodes[0].mac[0]', description: 'nodes[0] (n1): mac[0]: "52:54-00:ab:cd:ef": expected a MAC address like 52:54:00:12:34:56' },
    ]);
    const node = { name: 'n', ports: [], driver: 'fake', driverInfo: {}, properties: {}, capabilities: {}, rootDevice: {} } as unknown as NodeRecord;
    expect(() => applyPatch(node, [{ op: 'add', path: '/ports', value: '52:54:00:ab:cd:ef,52-54:00:ab:cd:ee' }]))
      .toThrow('/ports: "52-54:00:ab:cd:ee": expected a MAC address like 52:54:00:12:34:56');
    expect(() => normaliseLookup(['52:54-00:ab:cd:ef'], '')).toThrow('macs: "52:54-00:ab:cd:ef": expected a MAC address like 52:54:00:12:34:56');
  });

  it('formats hardware address octets', () => {
    expect(formatMac(Buffer.from([0x52, 0x54, 0x00, 0x0a, 0xbc, 0xff]))).toBe('52:54:00:0a:bc:ff');
    expect(formatMac(new Uint8Array(0))).toBe('');
  });

  it('reads BOOTIF with or without the ARP hardware type prefix', () => {
    expect(bootifMac('01-52-54-00-AB-CD-EF')).toBe('52:54:00:ab:cd:ef');
    expect(bootifMac('52:54:00:ab:cd:ef')).toBe('52:54:00:ab:cd:ef');
    expect(bootifMac('06-52-54-00-ab-cd-ef')).toBeNull();
    expect(bootifMac(undefined)).toBeNull();
  });
});
