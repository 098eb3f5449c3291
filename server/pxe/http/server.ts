/**
 * HTTP boot service: per-MAC iPXE scripts, static artifacts under the HTTP
 * root, and routes other modules add (the Prometheus exporter adds /metrics).
 */
import http from 'node:http';
import { realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../common/logging.js';
import { silentLogger } from '../../../common/logging.js';
import { normaliseMac } from '../../../common/mac.js';
import type { BootLog, Counters, PxeDirectory, PxeServiceStatus } from '../types.js';
import { AccessViolation, resolveUnderRoot } from '../root-path.js';
import { noRamdiskScript, renderBootScript, type BootScriptOptions } from './boot-script.js';
import { ArtifactHasher, serveFile } from './static.js';

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>;

export interface HttpBootConfig {
  listenHost: string;
  /** 8080 by default; 0 picks an ephemeral port. */
  port: number;
  /** Static artifacts; also where `ramdisk.kernel` and `ramdisk.initramfs` live unless overridden. */
  root: string;
  /** Absolute files served as `/ramdisk.kernel` and `/ramdisk.initramfs` (default: in the root). */
  ramdiskKernelFile?: string;
  ramdiskInitramfsFile?: string;
  boot: Omit<BootScriptOptions, 'kernelPath' | 'initramfsPath'>;
  /** Optional: client address → MAC, to log artifact fetches against a machine (e.g. from DHCP leases). */
  macForAddress?: (address: string) => string | null;
}

export class HttpBootServer {
  private server: http.Server | null = null;
  private realRoot = '';
  private readonly routes = new Map<string, RouteHandler>();
  private readonly counters: Counters = {};
  private readonly hasher = new ArtifactHasher();
  private readonly log: Logger;

  constructor(private readonly config: HttpBootConfig, private readonly directory: PxeDirectory, private readonly bootLog: BootLog, logger?: Logger) {
    this.log = logger ?? silentLogger();
  }

  /** Exact-path GET/HEAD route; later registrations replace earlier ones. */
  addRoute(path: string, handler: RouteHandler): void {
    if (!path.startsWith('/')) throw new RangeError(`route path: "${path}" must start with "/"`);
    this.routes.set(path, handler);
  }

  private count(name: string, by = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + by;
  }

  async start(): Promise<void> {
    this.realRoot = await realpath(this.config.root);
    const srv = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        this.count('errors');
        this.log.error({ err: e, url: req.url }, 'http request failed');
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end('internal error\n');
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.config.port, this.config.listenHost, () => { srv.off('error', reject); resolve(); });
    });
    this.server = srv;
    this.log.info({ listen: this.address(), root: this.realRoot }, 'http boot started');
  }

  address(): { address: string; port: number } {
    const a = this.server!.address() as AddressInfo;
    return { address: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  status(): PxeServiceStatus {
    // The bound port: the configured one may be 0.
    const port = (this.server?.address() as AddressInfo | null)?.port ?? this.config.port;
    return { service: 'http', running: this.server !== null, listen: `${this.config.listenHost}:${port}`, root: this.realRoot, counters: { ...this.counters } };
  }

  private text(res: http.ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }).end(body);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.count('requests');
    const url = new URL(req.url ?? '/', 'http://boot.invalid');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return this.text(res, 405, `method ${req.method} not allowed (expected GET or HEAD)\n`);
    }
    const route = this.routes.get(url.pathname);
    if (route) return route(req, res, url);
    if (url.pathname === '/boot.ipxe') return this.bootScript(req, res, url);
    return this.artifact(req, res, url);
  }

  private async bootScript(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const raw = url.searchParams.get('mac') ?? '';
    const mac = normaliseMac(raw);
    if (!mac) {
      this.count('bad_requests');
      return this.text(res, 400, `mac: "${raw}" is not a MAC address (expected e.g. 52:54:00:12:34:56)\n`);
    }
    const node = await this.directory.findByMac(mac);
    let { kind, script } = renderBootScript(node, mac, this.config.boot);
    const missing = kind === 'ramdisk' || kind === 'discovery' ? await this.missingRamdisk() : [];
    if (missing.length) {
      kind = 'no-ramdisk';
      script = noRamdiskScript(mac, missing, this.config.boot);
    }
    this.count(`boot_script_${kind.replace('-', '_')}`);
    this.bootLog.record({
      mac, service: 'http', event: missing.length ? 'ramdisk missing' : 'boot script served',
      detail: { kind, node: node?.name, state: node?.provisionState, client: req.socket.remoteAddress, ...(missing.length ? { missing } : {}) },
    });
    res.setHeader('Cache-Control', 'no-store');
    this.text(res, 200, script);
  }

  /** The ramdisk files ospd itself serves that are not there (none when it is fetched from elsewhere). */
  private async missingRamdisk(): Promise<string[]> {
    if (this.config.boot.ramdiskBaseUrl) return [];
    const files = [
      this.config.ramdiskKernelFile ?? join(this.config.root, 'ramdisk.kernel'),
      this.config.ramdiskInitramfsFile ?? join(this.config.root, 'ramdisk.initramfs'),
    ];
    const present = await Promise.all(files.map((f) => stat(f).then((s) => s.isFile(), () => false)));
    return files.filter((_, i) => !present[i]);
  }

  private async artifact(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    let path: string;
    try {
      const name = decodeURIComponent(url.pathname).replace(/^\//, '');
      if (name === 'ramdisk.kernel' && this.config.ramdiskKernelFile) path = await realpath(this.config.ramdiskKernelFile);
      else if (name === 'ramdisk.initramfs' && this.config.ramdiskInitramfsFile) path = await realpath(this.config.ramdiskInitramfsFile);
      else path = await resolveUnderRoot(this.realRoot, name);
    } catch (e) {
      if (e instanceof AccessViolation) { this.count('forbidden'); return this.text(res, 403, `forbidden: ${e.message}\n`); }
      if (e instanceof URIError || (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
        this.count('not_found');
        return this.text(res, 404, `not found: ${url.pathname}\n`);
      }
      throw e;
    }
    // Read before streaming: once the client closes, a destroyed socket no longer reports its peer.
    const client = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '';
    let result;
    try {
      result = await serveFile(req, res, path, this.hasher);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !res.headersSent) { this.count('not_found'); return this.text(res, 404, `not found: ${url.pathname}\n`); }
      throw e;
    }
    this.count('artifacts_served');
    this.count('bytes_sent', result.bytesSent);
    if (result.ranged) this.count('range_requests');
    const mac = this.config.macForAddress?.(client);
    if (mac) this.bootLog.record({ mac, service: 'http', event: `GET ${url.pathname}`, detail: { status: result.status, bytes: result.bytesSent } });
  }
}
