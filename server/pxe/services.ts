/**
 * The PXE facade ospd's composition root wires: builds whichever of DHCP,
 * TFTP and HTTP boot are configured, starts them in dependency order (HTTP
 * and TFTP before DHCP, so nothing is advertised before it can be served)
 * and reports their status for `ospctl pxe status`.
 */
import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import type { BootLog, LeaseStore, PxeDirectory, PxeServiceStatus } from './types.js';
import { DhcpServer, type DhcpConfig } from './dhcp/server.js';
import { TftpServer, type TftpConfig } from './tftp/server.js';
import { HttpBootServer, type HttpBootConfig } from './http/server.js';

export interface PxeConfig {
  /** null = off (the `off` value of --dhcp-listen / no --dhcp-interface). */
  dhcp: DhcpConfig | null;
  tftp: TftpConfig | null;
  http: HttpBootConfig | null;
}

export interface PxeDeps {
  directory: PxeDirectory;
  leases: LeaseStore;
  bootLog: BootLog;
  logger?: Logger;
}

export class PxeServices {
  readonly dhcp: DhcpServer | null;
  readonly tftp: TftpServer | null;
  readonly http: HttpBootServer | null;
  private readonly macByAddress = new Map<string, string>();

  constructor(config: PxeConfig, deps: PxeDeps) {
    const log = deps.logger ?? silentLogger();
    // TFTP and HTTP log fetches against a MAC when DHCP knows who holds the address.
    const macForAddress = (a: string) => this.macByAddress.get(a) ?? null;
    const bootLog: BootLog = {
      record: (e) => {
        if (e.service === 'dhcp' && typeof e.detail?.address === 'string' && /ACK/.test(e.event)) this.macByAddress.set(e.detail.address, e.mac);
        deps.bootLog.record(e);
      },
    };
    this.dhcp = config.dhcp ? new DhcpServer(config.dhcp, deps.directory, deps.leases, bootLog, log.child({ svc: 'dhcp' })) : null;
    this.tftp = config.tftp ? new TftpServer({ macForAddress, ...config.tftp }, bootLog, log.child({ svc: 'tftp' })) : null;
    this.http = config.http ? new HttpBootServer({ macForAddress, ...config.http }, deps.directory, bootLog, log.child({ svc: 'http' })) : null;
  }

  async start(): Promise<void> {
    const started: Array<{ stop(): Promise<void> }> = [];
    try {
      for (const s of [this.http, this.tftp, this.dhcp]) {
        if (!s) continue;
        await s.start();
        started.push(s);
      }
    } catch (e) {
      for (const s of started.reverse()) await s.stop().catch(() => undefined);
      throw e;
    }
  }

  async stop(): Promise<void> {
    for (const s of [this.dhcp, this.tftp, this.http]) if (s) await s.stop();
  }

  status(): PxeServiceStatus[] {
    return [this.dhcp, this.tftp, this.http].filter((s) => s !== null).map((s) => s!.status());
  }
}
