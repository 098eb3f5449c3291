/**
 * Address assignment for full-mode DHCP. Bound leases are written through to
 * the LeaseStore (so they survive a restart); offers and declined addresses
 * are held in memory only, because both are short-lived by design.
 * All mutations of the in-memory view happen synchronously, so two DISCOVERs
 * handled concurrently never receive the same address.
 */
import type { Lease, LeaseStore } from '../types.js';
import { intToIp, ipToInt } from './ipv4.js';

export interface PoolRange {
  start: string;
  end: string;
}

export interface LeasePoolOptions {
  range: PoolRange;
  /** Addresses never handed out from the range (server, router). */
  reserved: string[];
  /** How long an OFFER holds an address for the client (RFC 2131 §4.3.1 leaves it to the server). */
  offerHoldMs?: number;
  /** RFC 2131 §4.3.3: a declined address should not be reused for a while. */
  declineQuarantineMs?: number;
  now?: () => number;
}

export class LeasePool {
  private readonly bound = new Map<string, Lease>();
  private readonly offers = new Map<string, { ip: string; untilMs: number }>();
  private readonly quarantine = new Map<string, number>();
  /** Address → who holds it until when (bound or offered), so checks are O(1) instead of a scan. */
  private readonly owners = new Map<string, { mac: string; untilMs: number }>();
  private readonly addressOf = new Map<string, string>();
  /** Where the next free-address search starts; avoids rescanning the taken head of the range. */
  private cursor: number;
  private readonly start: number;
  private readonly end: number;
  private readonly reserved: Set<string>;
  private readonly now: () => number;

  constructor(private readonly store: LeaseStore, private readonly opts: LeasePoolOptions) {
    this.start = ipToInt(opts.range.start, 'dhcp range start');
    this.end = ipToInt(opts.range.end, 'dhcp range end');
    if (this.end < this.start) throw new RangeError(`dhcp range: end ${opts.range.end} is before start ${opts.range.start}`);
    this.reserved = new Set(opts.reserved);
    this.now = opts.now ?? Date.now;
    this.cursor = this.start;
  }

  private own(ip: string, mac: string, untilMs: number): void {
    const prev = this.addressOf.get(mac);
    if (prev && prev !== ip && this.owners.get(prev)?.mac === mac) this.owners.delete(prev);
    this.owners.set(ip, { mac, untilMs });
    this.addressOf.set(mac, ip);
  }

  private disown(mac: string): void {
    const prev = this.addressOf.get(mac);
    if (prev && this.owners.get(prev)?.mac === mac) this.owners.delete(prev);
    this.addressOf.delete(mac);
  }

  async load(): Promise<void> {
    this.bound.clear();
    this.owners.clear();
    this.addressOf.clear();
    for (const l of await this.store.list()) {
      this.bound.set(l.mac, l);
      this.own(l.ipv4Address, l.mac, l.expiresAtMs);
    }
  }

  leaseOf(mac: string): Lease | undefined {
    return this.bound.get(mac);
  }

  leases(): Lease[] {
    return [...this.bound.values()];
  }

  /** True when `ip` is not bound, offered or quarantined for anyone but `mac`. */
  isFreeFor(ip: string, mac: string): boolean {
    const t = this.now();
    if (this.reserved.has(ip)) return false;
    const q = this.quarantine.get(ip);
    if (q !== undefined && q > t) return false;
    const o = this.owners.get(ip);
    return !o || o.mac === mac || o.untilMs <= t;
  }

  inRange(ip: string): boolean {
    const n = ipToInt(ip);
    return n >= this.start && n <= this.end;
  }

  /**
   * Chooses an address for `mac` following RFC 2131 §4.3.1 order: a static
   * assignment, the client's current binding, its requested address, then
   * the first free address in the range. Marks it offered. Null when exhausted.
   */
  offer(mac: string, requested: string | null, staticIp?: string): string | null {
    const t = this.now();
    let ip: string | null = null;
    if (staticIp) ip = staticIp;
    else {
      const cur = this.bound.get(mac)?.ipv4Address ?? this.offers.get(mac)?.ip;
      if (cur && this.inRange(cur) && this.isFreeFor(cur, mac)) ip = cur;
      else if (requested && this.inRange(requested) && this.isFreeFor(requested, mac)) ip = requested;
      else {
        const size = this.end - this.start + 1;
        for (let k = 0; k < size; k++) {
          const n = this.start + ((this.cursor - this.start + k) % size);
          const cand = intToIp(n);
          if (this.isFreeFor(cand, mac)) { ip = cand; this.cursor = n + 1 > this.end ? this.start : n + 1; break; }
        }
      }
    }
    if (ip) {
      const untilMs = t + (this.opts.offerHoldMs ?? 60_000);
      this.offers.set(mac, { ip, untilMs });
      const held = this.owners.get(ip);
      if (!held || held.mac !== mac || held.untilMs < untilMs) this.own(ip, mac, untilMs);
    }
    return ip;
  }

  forgetOffer(mac: string): void {
    const o = this.offers.get(mac);
    this.offers.delete(mac);
    if (o && !this.bound.has(mac)) this.disown(mac);
  }

  async bind(mac: string, ip: string, leaseMs: number, hostname?: string): Promise<Lease> {
    const lease: Lease = { mac, ipv4Address: ip, expiresAtMs: this.now() + leaseMs, state: 'bound', ...(hostname ? { hostname } : {}) };
    this.bound.set(mac, lease);
    this.offers.delete(mac);
    this.own(ip, mac, lease.expiresAtMs);
    await this.store.put(lease);
    return lease;
  }

  async release(mac: string): Promise<void> {
    this.bound.delete(mac);
    this.offers.delete(mac);
    this.disown(mac);
    await this.store.remove(mac);
  }

  async decline(mac: string, ip: string): Promise<void> {
    this.quarantine.set(ip, this.now() + (this.opts.declineQuarantineMs ?? 600_000));
    if (this.bound.get(mac)?.ipv4Address === ip) await this.release(mac);
    else this.forgetOffer(mac);
  }
}
