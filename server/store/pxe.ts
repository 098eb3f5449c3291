import type { Logger } from '../../common/logging.js';
import type { Database, Queryable } from './db.js';
import { nodeStore } from './nodes.js';
import type { BootLog, BootLogEntry, Lease, LeaseStore, PxeDirectory, PxeNode } from '../pxe/types.js';

export interface BootLogRow {
  id: number;
  mac: string;
  time: string;
  service: string;
  event: string;
  detail: Record<string, unknown>;
}

/** How long boot steps are kept: long enough to explain last week's failed inspection. */
export const BOOT_LOG_RETENTION_MS = 14 * 86_400_000;
const PRUNE_EVERY_MS = 3_600_000;
/** Writes per transaction at most, so one commit never holds the writer for long. */
const MAX_BATCH = 500;

interface Write {
  apply: (tx: Queryable) => Promise<unknown>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * The PXE services' view of the store: nodes by MAC (state decides what a
 * machine boots), persisted leases, and the boot log. Boot steps are written
 * in the background: a slow disk must not slow a DHCP answer, and a failed
 * write is logged, never thrown into the protocol path.
 */
export class SqlitePxeStore implements PxeDirectory, LeaseStore, BootLog {
  private queued: Write[] = [];
  private flushing?: Promise<void>;
  private pruneTimer?: NodeJS.Timeout;

  constructor(private readonly db: Database, private readonly log: Logger) {}

  start(): void {
    void this.prune();
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await this.settled();
  }

  /**
   * Group commit: lease and boot-log writes that arrive while a transaction
   * runs go into the next one together. A lease still resolves only after
   * its commit (the ACK follows the durable write), but a boot storm costs
   * one commit per batch instead of one per packet.
   */
  private write(apply: Write['apply']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ apply, resolve, reject });
      this.flushing ??= this.flush().finally(() => { this.flushing = undefined; });
    });
  }

  private async flush(): Promise<void> {
    while (this.queued.length) {
      const batch = this.queued.splice(0, MAX_BATCH);
      try {
        await this.db.transaction(async (tx) => { for (const w of batch) await w.apply(tx); });
        for (const w of batch) w.resolve();
      } catch {
        // One failing write must not fail its neighbours: each is retried alone.
        for (const w of batch) await this.db.transaction((tx) => w.apply(tx)).then(w.resolve, w.reject);
      }
    }
  }

  /** Resolves once every write queued so far is committed (or has failed). */
  private async settled(): Promise<void> {
    for (let i = 0; i < 1000 && this.flushing; i++) await this.flushing;
  }

  async findByMac(mac: string): Promise<PxeNode | null> {
    const n = await nodeStore.findByMac(this.db, mac);
    return n ? { uuid: n.uuid, name: n.name, provisionState: n.provisionState, macs: n.ports, ipv4Address: n.properties.ipv4Address } : null;
  }

  async list(): Promise<Lease[]> {
    const rows = await this.db.all<{ mac: string; ipv4_address: string; expires_at_ms: number; hostname: string | null }>(
      'SELECT * FROM dhcp_leases ORDER BY ipv4_address');
    return rows.map((r) => ({ mac: r.mac, ipv4Address: r.ipv4_address, expiresAtMs: r.expires_at_ms, hostname: r.hostname ?? undefined, state: 'bound' }));
  }

  put(l: Lease): Promise<void> {
    return this.write(async (tx) => {
      // An address moves to a new MAC only after the old lease is gone (the pool decides that).
      await tx.run('DELETE FROM dhcp_leases WHERE ipv4_address = ? AND mac <> ?', [l.ipv4Address, l.mac]);
      await tx.run(`INSERT INTO dhcp_leases (mac, ipv4_address, expires_at_ms, hostname, state) VALUES (?,?,?,?,?)
        ON CONFLICT(mac) DO UPDATE SET ipv4_address = excluded.ipv4_address, expires_at_ms = excluded.expires_at_ms,
        hostname = excluded.hostname, state = excluded.state`, [l.mac, l.ipv4Address, l.expiresAtMs, l.hostname ?? null, l.state]);
    });
  }

  remove(mac: string): Promise<void> {
    return this.write((tx) => tx.run('DELETE FROM dhcp_leases WHERE mac = ?', [mac]));
  }

  record(e: BootLogEntry): void {
    const time = new Date().toISOString();
    this.write((tx) => tx.run('INSERT INTO boot_log (mac, time, service, event, detail) VALUES (?,?,?,?,?)',
      [e.mac, time, e.service, e.event, JSON.stringify(e.detail ?? {})]))
      .catch((err) => this.log.warn({ err, mac: e.mac }, 'boot log write failed'));
  }

  /** Newest first, for every MAC given. */
  async bootLog(macs: string[], limit = 200): Promise<BootLogRow[]> {
    if (macs.length === 0) return [];
    await this.settled();
    const rows = await this.db.all<{ id: number; mac: string; time: string; service: string; event: string; detail: string }>(
      `SELECT * FROM boot_log WHERE mac IN (${macs.map(() => '?').join(',')}) ORDER BY id DESC LIMIT ?`, [...macs, limit]);
    return rows.map((r) => ({ ...r, detail: JSON.parse(r.detail) }));
  }

  private async prune(): Promise<void> {
    const before = new Date(Date.now() - BOOT_LOG_RETENTION_MS).toISOString();
    await this.db.run('DELETE FROM boot_log WHERE time < ?', [before]).catch((err) => this.log.warn({ err }, 'boot log prune failed'));
  }
}
