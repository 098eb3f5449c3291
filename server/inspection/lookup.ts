import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import { RAMDISK_EVENT } from './history.js';
import type { NodeRecord } from '../nodes/model.js';
import { MAC_EXPECTED, normaliseMac } from '../../common/mac.js';
import { OspError } from '../../common/errors.js';

const MAX_MACS = 64;

/** A lookup's identifiers, normalised; a bad MAC is refused naming it. */
export function normaliseLookup(macs: string[], bmcAddress: string): { macs: string[]; bmcAddress: string } {
  if (macs.length > MAX_MACS) throw new OspError('INVALID_ARGUMENT', `macs: ${macs.length} addresses: expected at most ${MAX_MACS}`, { field: 'macs' });
  const out = macs.map((m) => {
    const n = normaliseMac(m);
    if (!n) throw new OspError('INVALID_ARGUMENT', `macs: ${JSON.stringify(m)}: expected ${MAC_EXPECTED}`, { field: 'macs' });
    return n;
  });
  const bmc = bmcAddress.trim();
  if (bmc && !/^[A-Za-z0-9.:[\]-]{1,253}$/.test(bmc)) {
    throw new OspError('INVALID_ARGUMENT', `bmc_address: ${JSON.stringify(bmc.slice(0, 60))}: expected an IP address or host name`, { field: 'bmc_address' });
  }
  return { macs: [...new Set(out)], bmcAddress: bmc === '0.0.0.0' ? '' : bmc };
}

/** The registered node owning any of the MACs, else the one whose BMC address matches. */
export async function findMachine(db: Database, macs: string[], bmcAddress: string): Promise<NodeRecord | undefined> {
  for (const m of macs) {
    const n = await nodeStore.findByMac(db, m);
    if (n) return n;
  }
  if (!bmcAddress) return undefined;
  return nodeStore.findByBmcAddress(db, bmcAddress);
}

/** Did this node already look up since the given event (one token per boot)? */
export async function lookedUpSince(db: Database, nodeUuid: string, sinceEventId: number): Promise<boolean> {
  return nodeStore.hasEventSince(db, nodeUuid, sinceEventId, RAMDISK_EVENT.lookup);
}

/** The id of the node's latest provision event, 0 when it never changed state (a discovery epoch starts there). */
export async function lastProvisionEventId(db: Database, nodeUuid: string): Promise<number> {
  return nodeStore.lastEventId(db, nodeUuid, 'provision');
}

/** A DNS-label node name for a discovered machine: from its serial number, else its first MAC. */
export function discoveredName(serial: string, macs: string[]): string[] {
  const label = (s: string) => s.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  const names: string[] = [];
  const s = label(serial);
  // DMI often holds placeholders instead of a serial.
  if (s && !/^(0+|none|default-string|to-be-filled-by-o-e-m|not-specified|system-serial-number)$/.test(s)) names.push(s);
  if (macs[0]) names.push(`mac-${macs[0].replace(/:/g, '')}`);
  return names;
}
