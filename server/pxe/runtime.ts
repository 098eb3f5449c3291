import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../common/logging.js';
import type { PxeSettings } from '../config.js';
import type { Service } from '../lifecycle.js';
import type { Database } from '../store/db.js';
import { SqlitePxeStore } from '../store/pxe.js';
import { PxeServices } from './services.js';
import { hostPort } from '../advertise.js';
import type { PxeServiceStatus } from './types.js';

/** Debian's ipxe package; copied into the TFTP root so legacy PXE ROMs can chain-load iPXE. */
export const IPXE_DIR = '/usr/lib/ipxe';
export const IPXE_FILES = ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'];

export interface PxeRuntimeOptions {
  settings: PxeSettings;
  discovery: boolean;
  /** The address machines use to reach ospd (server/advertise.ts decides it). */
  advertise: string;
  /** The gRPC API's port, read at start(): it is known only once the API is bound. */
  grpcPort: () => number;
  caSha256: string;
  db: Database;
  log: Logger;
}


/**
 * PXE inside ospd: the DHCP, TFTP and HTTP boot services over the SQLite
 * store, with what they advertise derived from one place, so the DHCP boot
 * file, the iPXE script and the kernel command line always agree.
 */
export class PxeRuntime implements Service {
  readonly store: SqlitePxeStore;
  services?: PxeServices;
  readonly advertise: string;
  readonly httpBaseUrl: string;
  serverAddress = '';
  readonly kernelFile: string;
  readonly initramfsFile: string;

  constructor(private readonly o: PxeRuntimeOptions) {
    const s = o.settings;
    this.store = new SqlitePxeStore(o.db, o.log.child({ component: 'pxe-store' }));
    this.advertise = o.advertise;
    this.httpBaseUrl = s.httpListen ? `http://${hostPort(this.advertise, s.httpListen.port)}` : '';
    this.kernelFile = s.ramdiskKernel ?? path.join(s.httpRoot, 'ramdisk.kernel');
    this.initramfsFile = s.ramdiskInitramfs ?? path.join(s.httpRoot, 'ramdisk.initramfs');
  }

  private async installIpxe(): Promise<void> {
    const root = this.o.settings.tftpRoot;
    await fs.mkdir(root, { recursive: true });
    for (const f of IPXE_FILES) {
      const src = path.join(IPXE_DIR, f);
      if (!existsSync(src)) {
        this.o.log.warn({ file: src }, 'iPXE binary missing (install Debian package ipxe); legacy PXE clients cannot chain-load');
        continue;
      }
      const dst = path.join(root, f);
      const [a, b] = await Promise.all([fs.stat(src), fs.stat(dst).catch(() => null)]);
      if (!b || b.size !== a.size || b.mtimeMs < a.mtimeMs) await fs.copyFile(src, dst);
    }
  }

  async start(): Promise<void> {
    const s = this.o.settings;
    this.serverAddress = hostPort(this.advertise, this.o.grpcPort());
    await fs.mkdir(s.httpRoot, { recursive: true });
    if (s.tftpListen) await this.installIpxe();
    const boot = { tftpServer: this.advertise, httpBaseUrl: this.httpBaseUrl };
    // HTTP scripts only get ramdisk lines when the files are there; otherwise they say so on the console.
    this.services = new PxeServices({
      http: s.httpListen && {
        listenHost: s.httpListen.host, port: s.httpListen.port, root: s.httpRoot,
        ramdiskKernelFile: this.kernelFile, ramdiskInitramfsFile: this.initramfsFile,
        boot: {
          httpBaseUrl: this.httpBaseUrl, serverAddress: this.serverAddress, caSha256: this.o.caSha256, discovery: this.o.discovery,
          extraKernelArgs: s.kernelArgs || undefined,
        },
      },
      tftp: s.tftpListen && { listenHost: s.tftpListen.host, port: s.tftpListen.port, root: s.tftpRoot },
      dhcp: s.dhcpListen && s.dhcpInterface ? {
        mode: s.dhcpMode, interfaceName: s.dhcpInterface, listenHost: s.dhcpListen.host, serverPort: s.dhcpListen.port,
        range: s.dhcpRange ?? undefined, router: s.dhcpRouter ?? undefined, dns: s.dhcpDns, discovery: this.o.discovery, boot,
      } : null,
    }, { directory: this.store, leases: this.store, bootLog: this.store, logger: this.o.log.child({ component: 'pxe' }) });
    this.store.start();
    await this.services.start();
    this.o.log.info({ listen: this.status().map((x) => `${x.service}=${x.listen ?? ''}`), advertise: this.advertise, http: this.httpBaseUrl, dhcp: s.dhcpInterface ?? 'off', discovery: this.o.discovery }, 'PXE services started');
  }

  async stop(): Promise<void> {
    await this.services?.stop();
    await this.store.stop();
  }

  status(): PxeServiceStatus[] {
    return this.services?.status() ?? [];
  }

  ramdisk(): { kernelPath: string; initramfsPath: string; kernelPresent: boolean; initramfsPresent: boolean } {
    return { kernelPath: this.kernelFile, initramfsPath: this.initramfsFile, kernelPresent: existsSync(this.kernelFile), initramfsPresent: existsSync(this.initramfsFile) };
  }
}
