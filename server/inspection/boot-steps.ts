import type { BootHistory, BootSteps } from './explain.js';

/** One boot log row as the PXE store returns it (SqlitePxeStore.bootLog fits). */
export interface BootLogRowView {
  time: string;
  service: string;
  event: string;
  detail: Record<string, unknown>;
}

export interface BootLogReader {
  /** Newest first. */
  bootLog(macs: string[], limit?: number): Promise<BootLogRowView[]>;
}

const ROWS = 500;
// DHCP replies are logged as "<request> → <reply>" (server/pxe/dhcp/server.ts).
const ADDRESS_REPLY = /→ (OFFER|ACK)$/;
const ACK_REPLY = /→ ACK$/;
const RAMDISK_FILE = /ramdisk|initramfs|initrd|vmlinuz|kernel/i;

/**
 * Reads the PXE boot log into the steps the timeout explanation names.
 * `dhcpServed` says whether ospd answers DHCP at all: when another server
 * does, the absence of DHCP rows says nothing.
 */
export class BootLogHistory implements BootHistory {
  constructor(private readonly reader: BootLogReader, private readonly dhcpServed: () => boolean) {}

  async stepsSince(macs: string[], sinceIso: string): Promise<BootSteps> {
    const rows = (await this.reader.bootLog(macs, ROWS)).filter((r) => r.time >= sinceIso);
    const dhcp = rows.filter((r) => r.service === 'dhcp');
    const fetched = (r: BootLogRowView) => {
      // Script requests (served, or refused for want of a ramdisk) are not fetches of the ramdisk itself.
      if (r.event === 'boot script served' || r.event === 'ramdisk missing') return false;
      const file = typeof r.detail.file === 'string' ? r.detail.file : r.event;
      const ok = r.service === 'tftp' ? !/refused|not found/i.test(r.event) : Number(r.detail.status ?? 200) < 400;
      return ok && RAMDISK_FILE.test(file);
    };
    return {
      dhcpRequest: this.dhcpServed() ? dhcp.length > 0 : undefined,
      addressOffered: this.dhcpServed() ? dhcp.some((r) => ADDRESS_REPLY.test(r.event)) : undefined,
      addressAcknowledged: this.dhcpServed() ? dhcp.some((r) => ACK_REPLY.test(r.event)) : undefined,
      bootScriptFetched: rows.some((r) => r.service === 'http' && (r.event === 'boot script served' || r.event === 'ramdisk missing')),
      ramdiskMissing: rows.some((r) => r.service === 'http' && r.event === 'ramdisk missing'),
      ramdiskFetched: rows.some((r) => (r.service === 'http' || r.service === 'tftp') && fetched(r)),
    };
  }
}
