import { describe, expect, it } from 'vitest';
import { deriveProperties, introspectionData } from '../../server/inspection/derive.js';
import { GIB, HintError, chooseRootDisk, type InventoryDisk } from '../../server/inspection/root-device.js';
import { BOCHS, CONTINUE, DELL, IRONIC_API, KVM, inventory } from './helpers.js';

describe('deriveProperties on every fixture inventory', () => {
  // Expected values are inspector's own processed keys in the same files where they exist.
  it.each([DELL, KVM, BOCHS])('%s agrees with inspector\'s processed keys', (file) => {
    const doc = inventory(file);
    const d = deriveProperties(doc);
    expect(d.cpus).toBe(doc.cpus);
    expect(d.memoryMb).toBe(doc.memory_mb);
    expect(d.localGb).toBe(doc.local_gb);
    expect(d.cpuArch).toBe(doc.cpu_arch);
    expect(d.pxeMacs).toEqual(doc.macs);
    expect(d.rootDisk?.name).toBe((doc.root_disk as { name: string }).name);
  });

  it('the ramdisk continue request (bare data, boot_interface only at top level)', () => {
    const d = deriveProperties(inventory(CONTINUE));
    expect(d).toMatchObject({ cpus: 2, memoryMb: 2048, localGb: 12, cpuArch: 'x86_64', pxeMacs: ['52:54:00:4e:3d:30'] });
  });

  it("Ironic's node inventory (no memory, no disks): derives what it can and says what is missing", () => {
    const d = deriveProperties(inventory(IRONIC_API));
    expect(d.cpus).toBe(1);
    expect(d.cpuArch).toBe('x86_64');
    expect(d.memoryMb).toBeUndefined();
    expect(d.localGb).toBeUndefined();
    expect(d.notes.join('\n')).toMatch(/memory_mb: .*no memory/);
    expect(d.notes.join('\n')).toMatch(/local_gb: .*no disks/);
    // No PXE interface known: the NICs with an address.
    expect(d.pxeMacs).toEqual(['52:54:00:90:35:d6']);
  });

  it('takes a bare agent inventory (no inventory wrapper) the same way', () => {
    const wrapped = inventory(KVM);
    const bare = { schema: 'osp.inventory/v1', ...(wrapped.inventory as object) };
    const d = deriveProperties(bare);
    expect(d).toMatchObject({ cpus: 2, memoryMb: 6144, localGb: 49, cpuArch: 'x86_64', pxeMacs: ['00:ca:ff:65:6e:68'] });
    const data = introspectionData(bare);
    expect(data).toMatchObject({ cpus: 2, memory_mb: 6144, local_gb: 49, cpu_arch: 'x86_64', boot_interface: '00:ca:ff:65:6e:68' });
    expect((data.inventory as { schema: string }).schema).toBe('osp.inventory/v1');
  });

  it('strips the BOOTIF hardware type prefix (01-) from the PXE interface', () => {
    const d = deriveProperties({ interfaces: [{ mac_address: 'aa:bb:cc:dd:ee:01' }], boot: { pxe_interface: '01-aa-bb-cc-dd-ee-01' } });
    expect(d.pxeMacs).toEqual(['aa:bb:cc:dd:ee:01']);
  });
});

describe('root device hints', () => {
  const dell = (inventory(DELL).inventory as { disks: InventoryDisk[] }).disks;
  const disks: InventoryDisk[] = [
    { name: '/dev/sda', size: 2 * GIB, rotational: false, serial: 'S-SMALL', vendor: 'ATA', model: 'Tiny' },
    { name: '/dev/sdb', size: 100 * GIB, rotational: true, serial: 'S-BIG', vendor: 'SEAGATE', model: 'ST100', wwn: '0x5000C500ABCDEF' },
    { name: '/dev/nvme0n1', size: 20 * GIB, rotational: false, serial: 'S-NVME', vendor: 'Samsung', model: 'PM983', hctl: '1:0:0:0' },
  ];

  it('without hints: the smallest disk of at least 4 GiB', () => {
    expect(chooseRootDisk(disks, {})?.name).toBe('/dev/nvme0n1');
    expect(chooseRootDisk([disks[0]], {})).toBeNull();
  });

  it.each([
    [{ serial: 'S-BIG' }, '/dev/sdb'],
    [{ wwn: '0x5000c500abcdef' }, '/dev/sdb'],
    [{ name: 'sdb' }, '/dev/sdb'],
    [{ name: '/dev/nvme0n1' }, '/dev/nvme0n1'],
    [{ size: '100' }, '/dev/sdb'],
    [{ size: '>= 50' }, '/dev/sdb'],
    [{ size: '< 50' }, '/dev/sda'],
    [{ size: '<or> 20 <or> 100' }, '/dev/sdb'],
    [{ rotational: 'false', size: '> 4' }, '/dev/nvme0n1'],
    [{ vendor: 'samsung' }, '/dev/nvme0n1'],
    [{ model: '<in> ST' }, '/dev/sdb'],
    [{ hctl: '1:0:0:0' }, '/dev/nvme0n1'],
    [{ model: 's!= Tiny', rotational: 'true' }, '/dev/sdb'],
    [{ serial: 'nope' }, null],
  ])('%j → %s', (hints, want) => {
    expect(chooseRootDisk(disks, hints as Record<string, string>)?.name ?? null).toBe(want);
  });

  it('the Dell PERC volume by wwn, by_path and size operators; local_gb follows the chosen disk', () => {
    expect(chooseRootDisk(dell, { wwn: '0x6b083fe0d2d0eb00' })?.name).toBe('/dev/sda');
    expect(chooseRootDisk(dell, { by_path: '/dev/disk/by-path/pci-0000:01:00.0-scsi-0:2:0:0' })?.name).toBe('/dev/sda');
    expect(chooseRootDisk(dell, { size: '>= 600' })).toBeNull();
    const d = deriveProperties(inventory(DELL), { size: '>= 600' });
    expect(d.localGb).toBeUndefined();
    expect(d.notes.join()).toMatch(/no disk matches the root device hints/);
  });

  it('bad hints are named with the value and what was expected', () => {
    expect(() => chooseRootDisk(disks, { size: 'big' })).toThrow(HintError);
    expect(() => chooseRootDisk(disks, { size: 'big' })).toThrow(/root_device.size: "big": expected a whole number of GiB/);
    expect(() => chooseRootDisk(disks, { rotational: 'maybe' })).toThrow(/root_device.rotational: "maybe": expected true or false/);
    expect(() => chooseRootDisk(disks, { colour: 'red' })).toThrow(/root_device.colour: "red": expected a root device hint/);
  });
});
