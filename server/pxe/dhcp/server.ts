/**
 * DHCP service: full mode (address pool, RFC 2131) or proxyDHCP mode (PXE
 * spec 2.1 §2.2.5 / RFC 4578: boot information only, beside another server).
 *
 * Interface binding — what this really guarantees. Node's dgram cannot set
 * SO_BINDTODEVICE or read IP_PKTINFO, so the socket listens on 0.0.0.0:67 and
 * cannot tell on which link a broadcast arrived. Instead:
 *  1. Every reply to a client without an address is sent to the provisioning
 *     subnet's directed broadcast (e.g. 10.213.0.255), never 255.255.255.255:
 *     the kernel routes that only through the interface owning the subnet, so
 *     no reply ever leaves on another link. (Clients in INIT state receive it:
 *     they listen on raw/link-level sockets and it is link-layer broadcast.)
 *  2. Requests carrying an address (ciaddr, giaddr, option 50) outside the
 *     provisioning subnet are dropped and counted (`dropped_foreign_subnet`).
 *  3. Unicast requests (renewals) are received on a second socket bound to
 *     the interface's own address, so they reach this server and not another
 *     wildcard :67 socket; unicast replies go to addresses inside the subnet only.
 * What it does not guarantee: a DISCOVER broadcast on another link by an
 * address-less client is still processed (an offer may be held for ~60 s and a
 * boot-log entry written), though the answer can only reach the provisioning
 * link. Operators needing strict isolation run ospd's DHCP in a network
 * namespace holding only the provisioning interface.
 */
import dgram from 'node:dgram';
import { interfaceIpv4 } from '../interface-address.js';
import type { Logger } from '../../../common/logging.js';
import { silentLogger } from '../../../common/logging.js';
import { OspError } from '../../../common/errors.js';
import type { BootLog, Counters, LeaseStore, PxeDirectory, PxeNode, PxeServiceStatus } from '../types.js';
import { BOOTREPLY, BOOTREQUEST, DhcpDecodeError, MESSAGE_TYPE_NAMES, MessageType, Opt, OptionValue, decode, encode, type DhcpPacket } from './packet.js';
import { classifyClient, type BootDecision, type BootTargets } from './boot-file.js';
import { LeasePool } from './pool.js';
import { broadcastOf, inSubnet, intToIp, subnetOf, type Subnet } from './ipv4.js';

export interface DhcpConfig {
  mode: 'full' | 'proxy';
  /** Provisioning interface; its first IPv4 address and netmask define the subnet. */
  interfaceName: string;
  /** Default 0.0.0.0 (see the header comment). */
  listenHost?: string;
  /** Default 67; tests and benchmarks may use another. */
  serverPort?: number;
  /** Default 68. */
  clientPort?: number;
  /** proxyDHCP boot-server port (PXE spec §2.2.6), default 4011; null disables it. */
  proxyPort?: number | null;
  /** Full mode only. */
  range?: { start: string; end: string };
  router?: string;
  dns?: string[];
  domain?: string;
  leaseTimeSec?: number;
  /** Answer MACs the directory does not know. */
  discovery: boolean;
  boot: BootTargets;
}

const ZERO = '0.0.0.0';

export class DhcpServer {
  private socket: dgram.Socket | null = null;
  private proxySocket: dgram.Socket | null = null;
  private unicastSocket: dgram.Socket | null = null;
  private pool: LeasePool | null = null;
  private subnet!: Subnet;
  private serverAddress = ZERO;
  private broadcast = '255.255.255.255';
  private readonly counters: Counters = {};
  private readonly log: Logger;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly config: DhcpConfig,
    private readonly directory: PxeDirectory,
    private readonly leases: LeaseStore,
    private readonly bootLog: BootLog,
    logger?: Logger,
  ) {
    this.log = logger ?? silentLogger();
  }

  private count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }

  private resolveInterface(): void {
    const v4 = interfaceIpv4(this.config.interfaceName);
    if (!v4) {
      throw new OspError('CONFIG_INVALID', `dhcp interface: "${this.config.interfaceName}" has no IPv4 address (expected an existing interface with one)`, { field: 'dhcp-interface', value: this.config.interfaceName });
    }
    this.serverAddress = v4.address;
    this.subnet = subnetOf(v4.address, v4.netmask);
    this.broadcast = broadcastOf(this.subnet);
  }

  async start(): Promise<void> {
    this.resolveInterface();
    const c = this.config;
    if (c.mode === 'full') {
      if (!c.range) throw new OspError('CONFIG_INVALID', 'dhcp range: required in full mode (expected START,END)', { field: 'dhcp-range' });
      for (const [field, ip] of [['dhcp range start', c.range.start], ['dhcp range end', c.range.end]] as const) {
        if (!inSubnet(ip, this.subnet)) {
          throw new OspError('CONFIG_INVALID', `${field}: ${ip} is outside ${intToIp(this.subnet.network)}/${this.subnet.prefixLength} of ${c.interfaceName}`, { field, value: ip });
        }
      }
      this.pool = new LeasePool(this.leases, { range: c.range, reserved: [this.serverAddress, ...(c.router ? [c.router] : [])] });
      await this.pool.load();
    }
    this.socket = await this.bind(c.serverPort ?? 67, c.listenHost ?? ZERO);
    // A socket on the interface's own address wins the kernel's lookup for
    // unicast (renewals) over any other wildcard :67 socket on the host, so
    // two servers on different interfaces never steal each other's unicasts.
    if ((c.listenHost ?? ZERO) === ZERO) this.unicastSocket = await this.bind(c.serverPort ?? 67, this.serverAddress);
    if (c.mode === 'proxy' && c.proxyPort !== null) this.proxySocket = await this.bind(c.proxyPort ?? 4011, c.listenHost ?? ZERO);
    this.log.info({ mode: c.mode, interface: c.interfaceName, address: this.serverAddress }, 'dhcp started');
  }

  private bind(port: number, host: string): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      s.once('error', reject);
      s.on('message', (msg, rinfo) => {
        const p = this.handle(msg, rinfo, s).catch((e: unknown) => {
          this.count('handler_errors');
          this.log.error({ err: e }, 'dhcp handler failed');
        });
        this.inFlight.add(p);
        void p.finally(() => this.inFlight.delete(p));
      });
      s.bind(port, host, () => {
        s.off('error', reject);
        s.on('error', (e) => this.log.error({ err: e }, 'dhcp socket error'));
        s.setBroadcast(true);
        resolve(s);
      });
    });
  }

  async stop(): Promise<void> {
    for (const s of [this.socket, this.unicastSocket, this.proxySocket]) if (s) await new Promise<void>((r) => s.close(() => r()));
    this.socket = this.unicastSocket = this.proxySocket = null;
    await Promise.allSettled([...this.inFlight]);
  }

  status(): PxeServiceStatus {
    return {
      service: 'dhcp', running: this.socket !== null, listen: `${this.config.listenHost ?? ZERO}:${this.config.serverPort ?? 67}`,
      mode: this.config.mode, interface: this.config.interfaceName, serverAddress: this.serverAddress,
      leases: this.pool?.leases().length ?? 0, counters: { ...this.counters },
    };
  }

  private async handle(msg: Buffer, rinfo: dgram.RemoteInfo, sock: dgram.Socket): Promise<void> {
    this.count('received');
    let p: DhcpPacket;
    try {
      p = decode(msg);
    } catch (e) {
      if (!(e instanceof DhcpDecodeError)) throw e;
      this.count('dropped_malformed');
      this.count(`malformed_${e.reason}`);
      this.log.debug({ from: rinfo.address, reason: e.message }, 'dhcp packet dropped');
      return;
    }
    // RFC 2131 §4.1: servers only process BOOTREQUEST; we serve Ethernet only.
    if (p.op !== BOOTREQUEST) return this.drop('dropped_not_request');
    if (p.htype !== 1 || p.hlen !== 6) return this.drop('dropped_unsupported_hardware');
    const typeBuf = p.options.get(Opt.MESSAGE_TYPE);
    if (!typeBuf || typeBuf.length !== 1 || !MESSAGE_TYPE_NAMES[typeBuf[0]]) {
      this.count('dropped_malformed');
      return this.drop('malformed_message_type');
    }
    const type = typeBuf[0] as MessageType;
    const requested = OptionValue.readIp(p.options.get(Opt.REQUESTED_IP));
    for (const ip of [p.ciaddr, p.giaddr, requested]) {
      if (ip && ip !== ZERO && !inSubnet(ip, this.subnet)) return this.drop('dropped_foreign_subnet');
    }
    this.count(MESSAGE_TYPE_NAMES[type].toLowerCase());
    const mac = p.chaddr;
    const node = await this.directory.findByMac(mac);
    const decision = classifyClient(p.options, mac, this.config.boot);
    const base = { mac, service: 'dhcp' as const };
    if (!node && !this.config.discovery) {
      this.count('ignored_unknown_mac');
      this.bootLog.record({ ...base, event: `${MESSAGE_TYPE_NAMES[type]} ignored`, detail: { reason: 'unknown MAC, discovery off' } });
      return;
    }
    if (this.config.mode === 'proxy') return this.handleProxy(p, type, decision, rinfo, sock);
    return this.handleFull(p, type, requested, node, decision);
  }

  private drop(counter: string): void {
    this.count(counter);
  }

  private async handleFull(p: DhcpPacket, type: MessageType, requested: string | null, node: PxeNode | null, d: BootDecision): Promise<void> {
    const pool = this.pool!;
    const mac = p.chaddr;
    const staticIp = node?.ipv4Address && inSubnet(node.ipv4Address, this.subnet) ? node.ipv4Address : undefined;
    const serverId = OptionValue.readIp(p.options.get(Opt.SERVER_ID));
    const leaseMs = (this.config.leaseTimeSec ?? 3600) * 1000;
    switch (type) {
      case MessageType.DISCOVER: {
        const ip = pool.offer(mac, requested, staticIp);
        if (!ip) {
          this.count('pool_exhausted');
          this.bootLog.record({ mac, service: 'dhcp', event: 'DISCOVER unanswered', detail: { reason: 'pool exhausted' } });
          return;
        }
        return this.reply(p, MessageType.OFFER, ip, d, node);
      }
      case MessageType.REQUEST: {
        // RFC 2131 §4.3.2: SELECTING carries option 54; another server's id means the client chose it.
        if (serverId && serverId !== this.serverAddress) { pool.forgetOffer(mac); this.count('request_for_other_server'); return; }
        const wanted = serverId || requested ? requested : p.ciaddr !== ZERO ? p.ciaddr : null;
        if (!wanted) return this.drop('dropped_request_without_address');
        const current = pool.leaseOf(mac);
        const acceptable = staticIp ? wanted === staticIp : (pool.inRange(wanted) && pool.isFreeFor(wanted, mac));
        if (!acceptable) {
          // INIT-REBOOT/REBINDING for a client we hold no record of: RFC 2131 §4.3.2 says remain silent.
          if (!serverId && !current) return this.drop('request_unknown_client_silent');
          return this.reply(p, MessageType.NAK, ZERO, d, node, `requested address ${wanted} not available`);
        }
        await pool.bind(mac, wanted, leaseMs, node?.name);
        return this.reply(p, MessageType.ACK, wanted, d, node);
      }
      case MessageType.RELEASE:
        if (pool.leaseOf(mac)?.ipv4Address === p.ciaddr) await pool.release(mac);
        this.bootLog.record({ mac, service: 'dhcp', event: 'RELEASE', detail: { address: p.ciaddr } });
        return;
      case MessageType.DECLINE:
        if (requested) await pool.decline(mac, requested);
        this.bootLog.record({ mac, service: 'dhcp', event: 'DECLINE', detail: { address: requested } });
        return;
      case MessageType.INFORM:
        // RFC 2131 §4.3.5: configuration only, no lease, yiaddr zero, unicast to ciaddr.
        return this.reply(p, MessageType.ACK, ZERO, d, node);
      default:
        return this.drop('dropped_unexpected_type');
    }
  }

  private async handleProxy(p: DhcpPacket, type: MessageType, d: BootDecision, rinfo: dgram.RemoteInfo, sock: dgram.Socket): Promise<void> {
    // PXE spec §2.2.5: a proxyDHCP server answers PXE clients only and never assigns addresses.
    if (d.kind === 'not-pxe') return this.drop('ignored_not_pxe');
    if (!d.file) {
      this.bootLog.record({ mac: p.chaddr, service: 'dhcp', event: `${MESSAGE_TYPE_NAMES[type]} unanswered`, detail: { reason: 'no boot file for client architecture', arch: d.arch } });
      return this.drop('ignored_unknown_arch');
    }
    const onBootServerPort = sock === this.proxySocket;
    if (type === MessageType.DISCOVER && !onBootServerPort) return this.reply(p, MessageType.OFFER, ZERO, d, null);
    if (type === MessageType.REQUEST && (onBootServerPort || p.ciaddr !== ZERO)) {
      // PXE spec §2.2.6: the boot-server ACK goes back to the client's source address and port.
      return this.reply(p, MessageType.ACK, ZERO, d, null, undefined, { address: rinfo.address, port: rinfo.port, via: sock });
    }
    return this.drop('proxy_ignored_type');
  }

  private buildOptions(type: MessageType, p: DhcpPacket, d: BootDecision, node: PxeNode | null, message?: string): Map<number, Buffer> {
    const c = this.config;
    const o = new Map<number, Buffer>();
    o.set(Opt.MESSAGE_TYPE, OptionValue.u8(type));
    o.set(Opt.SERVER_ID, OptionValue.ip(this.serverAddress));
    if (type === MessageType.NAK) {
      if (message) o.set(Opt.MESSAGE, OptionValue.text(message));
      return o;
    }
    if (c.mode === 'full') {
      const isInform = p.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.INFORM;
      if (!isInform) {
        const lease = c.leaseTimeSec ?? 3600;
        o.set(Opt.LEASE_TIME, OptionValue.u32(lease));
        // RFC 2131 §4.4.5 defaults: T1 = 0.5, T2 = 0.875 of the lease.
        o.set(Opt.RENEWAL_T1, OptionValue.u32(Math.floor(lease / 2)));
        o.set(Opt.REBINDING_T2, OptionValue.u32(Math.floor(lease * 0.875)));
      }
      o.set(Opt.SUBNET_MASK, OptionValue.ip(intToIp(this.subnet.mask)));
      o.set(Opt.BROADCAST, OptionValue.ip(this.broadcast));
      if (c.router) o.set(Opt.ROUTER, OptionValue.ip(c.router));
      if (c.dns?.length) o.set(Opt.DNS, OptionValue.ips(c.dns));
      if (c.domain) o.set(Opt.DOMAIN, OptionValue.text(c.domain));
      if (node?.name) o.set(Opt.HOSTNAME, OptionValue.text(node.name));
    }
    if (d.vendorClass) o.set(Opt.VENDOR_CLASS, OptionValue.text(d.vendorClass));
    if (c.mode === 'proxy') {
      // PXE spec Table 2-1: PXE_DISCOVERY_CONTROL (tag 6) = 8 → boot straight from the file field.
      o.set(Opt.VENDOR_SPECIFIC, Buffer.from([6, 1, 8, 255]));
    }
    if (d.file) {
      const prl = p.options.get(Opt.PARAM_REQUEST);
      if (prl?.includes(Opt.BOOTFILE_NAME)) o.set(Opt.BOOTFILE_NAME, OptionValue.text(d.file));
      if (prl?.includes(Opt.TFTP_SERVER_NAME)) o.set(Opt.TFTP_SERVER_NAME, OptionValue.text(c.boot.tftpServer));
    }
    return o;
  }

  private reply(p: DhcpPacket, type: MessageType, yiaddr: string, d: BootDecision, node: PxeNode | null, message?: string,
    to?: { address: string; port: number; via: dgram.Socket }): void {
    const file = type === MessageType.NAK ? '' : d.file ?? '';
    const out = encode({
      op: BOOTREPLY, htype: p.htype, hlen: p.hlen, hops: 0, xid: p.xid, secs: 0, flags: p.flags,
      ciaddr: type === MessageType.NAK ? ZERO : p.ciaddr, yiaddr, siaddr: file && !/^https?:/.test(file) ? this.config.boot.tftpServer : ZERO,
      giaddr: p.giaddr, chaddr: p.chaddr, sname: '', file, options: this.buildOptions(type, p, d, node, message),
    });
    // RFC 2131 §4.1 destination rules, with the subnet broadcast standing in for 255.255.255.255 (header comment).
    let address: string;
    let port = this.config.clientPort ?? 68;
    let via = this.socket!;
    if (to) ({ address, port, via } = to);
    else if (p.giaddr !== ZERO) { address = p.giaddr; port = this.config.serverPort ?? 67; }
    else if (type === MessageType.NAK) address = this.broadcast;
    else if (p.ciaddr !== ZERO) address = p.ciaddr;
    else address = this.broadcast;
    via.send(out, port, address, (err) => {
      if (err) { this.count('send_errors'); this.log.warn({ err, address }, 'dhcp send failed'); }
    });
    const name = MESSAGE_TYPE_NAMES[type];
    this.count(`${name.toLowerCase()}_sent`);
    this.bootLog.record({
      mac: p.chaddr, service: 'dhcp', event: `${MESSAGE_TYPE_NAMES[p.options.get(Opt.MESSAGE_TYPE)![0]]} → ${name}`,
      detail: { mode: this.config.mode, address: yiaddr !== ZERO ? yiaddr : undefined, client: d.kind, arch: d.arch, file: file || undefined, ...(message ? { message } : {}) },
    });
  }
}
