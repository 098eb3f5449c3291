import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { normaliseMac } from '../../common/mac.js';
import { HostSources } from '../inventory/index.js';
import { collectBmcAddress } from '../inventory/collect.js';

export interface MachineIdentity {
  macs: string[];
  bmcAddress: string;
  serial: string;
}

/**
 * What the ramdisk tells ospd to find its node: every NIC's MAC (virtual
 * ones included: the node may have been registered by any of them), the BMC
 * address the machine reports (IPMI LAN config) and its DMI serial.
 */
export async function machineIdentity(root: string): Promise<MachineIdentity> {
  const net = path.join(root, 'sys/class/net');
  const macs: string[] = [];
  for (const name of (await readdir(net).catch(() => [] as string[])).sort()) {
    if (name === 'lo') continue;
    const mac = normaliseMac(await readFile(path.join(net, name, 'address'), 'utf8').catch(() => ''));
    if (mac && mac !== '00:00:00:00:00:00') macs.push(mac);
  }
  const bmcAddress = (await collectBmcAddress(new HostSources({ root }))) ?? '';
  const serial = (await readFile(path.join(root, 'sys/class/dmi/id/product_serial'), 'utf8').catch(() => '')).trim();
  return { macs: [...new Set(macs)], bmcAddress, serial };
}
