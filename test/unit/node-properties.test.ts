import { describe, expect, it } from 'vitest';
import { pickProperties, propertiesBySnakeName, propertyField } from '../../common/node-properties.js';

describe('node properties', () => {
  it('maps snake_case names to fields and knows no others', () => {
    expect(propertyField('memory_mb')).toBe('memoryMb');
    expect(propertyField('ipv4_address')).toBe('ipv4Address');
    for (const bad of ['memoryMb', 'toString', '__proto__', 'capabilities', '']) expect(propertyField(bad), bad).toBeUndefined();
  });

  it('keeps only the set, known properties', () => {
    const loose = { cpus: 4, memoryMb: undefined, cpuArch: 'x86_64', rootDisk: { size: 1 } } as Parameters<typeof pickProperties>[0];
    expect(pickProperties(loose)).toEqual({ cpus: 4, cpuArch: 'x86_64' });
    expect(propertiesBySnakeName({ localGb: 0, ipv4Address: '10.0.0.5', cpus: 2 })).toEqual({ cpus: 2, local_gb: 0, ipv4_address: '10.0.0.5' });
    expect(propertiesBySnakeName(undefined)).toEqual({});
  });
});
