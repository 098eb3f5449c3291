import { createServer as createHttpsServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { loadMockup, type Resource } from './mockup.js';
import { generateSelfSignedCert, type SelfSignedCert } from './tls.js';

export interface PowerCommand { command: string; args?: string[] }

export interface RedfishSimulatorOptions {
  /** A DMTF mockup folder (the service root); its resources are the starting state. */
  mockupDir: string;
  host?: string;
  /** 0 = ephemeral. */
  port?: number;
  username?: string;
  password?: string;
  /** Time a Reset takes before PowerState changes (real BMCs lag). */
  resetDelayMs?: number;
  /** Idle time after which a session is invalid (Redfish SessionTimeout). */
  sessionTimeoutMs?: number;
  /** Send and enforce ETags on ComputerSystem resources. */
  etags?: boolean;
  /** Accept HTTP Basic auth besides sessions. */
  basicAuth?: boolean;
  /** Disable SessionService so clients must fall back to Basic auth. */
  sessions?: boolean;
  /** Reset types to remove from every system's allowable values (e.g. ['GracefulShutdown']). */
  withoutResetTypes?: string[];
  /** System id → process started on power on and stopped on power off (lab: a QEMU machine). */
  powerCommands?: Record<string, PowerCommand>;
  /** Reuse one certificate across many simulators. */
  cert?: SelfSignedCert;
}

interface Session { id: string; token: string; lastUsedMs: number }

const STD_RESET = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle'];

/** A Redfish service for tests and the lab, seeded from a DMTF mockup. */
export class RedfishSimulator {
  private server?: Server;
  private res = new Map<string, Resource>();
  private readonly versions = new Map<string, number>();
  private readonly sessions = new Map<string, Session>();
  private readonly procs = new Map<string, ChildProcess>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private certPair?: SelfSignedCert;
  /** Every HTTP request served, for the benchmark's requests-per-node figure. */
  requestCount = 0;

  constructor(private readonly opts: RedfishSimulatorOptions) {}

  get port(): number { return (this.server?.address() as AddressInfo).port; }
  get host(): string { return this.opts.host ?? '127.0.0.1'; }
  get caPem(): string { return this.certPair!.certPem; }
  get systemPaths(): string[] { return this.members('/redfish/v1/Systems'); }

  async start(): Promise<void> {
    this.res = await loadMockup(this.opts.mockupDir);
    for (const p of this.systemPaths) this.prepareSystem(p);
    this.certPair = this.opts.cert ?? await generateSelfSignedCert();
    this.server = createHttpsServer({ cert: this.certPair.certPem, key: this.certPair.keyPem }, (req, res) => {
      this.handle(req, res).catch((e) => this.send(res, 500, { error: { code: 'Base.1.0.InternalError', message: String(e) } }));
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port ?? 0, this.host, () => resolve());
    });
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const id of [...this.procs.keys()]) this.stopProcess(id);
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server!.close(() => resolve()));
      this.server = undefined;
    }
  }

  // ---- test and lab controls -------------------------------------------
  getSystem(path: string): Resource { return this.res.get(path)!; }
  /** Flip power as if someone pressed the button: an out-of-band change. */
  setPowerState(path: string, state: 'On' | 'Off'): void { this.applyPower(path, state); }
  /** Simulates a concurrent writer: clients holding the old ETag get 412. */
  touch(path: string): void { this.versions.set(path, (this.versions.get(path) ?? 1) + 1); }
  expireAllSessions(): void { this.sessions.clear(); }
  /** The next n PATCHes find the resource changed by someone else since the client read it. */
  raceNextPatches(n: number): void { this.pendingRaces = n; }
  /** PATCH answers with 412, for tests. */
  preconditionFailures = 0;
  private pendingRaces = 0;
  sessionCount(): number { return this.sessions.size; }

  private prepareSystem(path: string): void {
    const sys = this.res.get(path)!;
    this.versions.set(path, 1);
    const drop = new Set(this.opts.withoutResetTypes ?? []);
    const filter = (vals: unknown): string[] => (Array.isArray(vals) ? vals : STD_RESET).filter((v: string) => !drop.has(v));
    const reset = ((sys.Actions as Resource | undefined)?.['#ComputerSystem.Reset'] ?? {}) as Resource;
    const infoPath = reset['@Redfish.ActionInfo'] as string | undefined;
    if (infoPath && this.res.has(infoPath)) {
      for (const p of (this.res.get(infoPath)!.Parameters as Resource[]) ?? []) {
        if (p.Name === 'ResetType') p.AllowableValues = filter(p.AllowableValues);
      }
    } else if ('ResetType@Redfish.AllowableValues' in reset) {
      reset['ResetType@Redfish.AllowableValues'] = filter(reset['ResetType@Redfish.AllowableValues']);
    }
    if (sys.PowerState === 'On' && this.opts.powerCommands?.[String(sys.Id)]) this.startProcess(String(sys.Id));
  }

  private members(path: string): string[] {
    const coll = this.res.get(path);
    return ((coll?.Members as Resource[] | undefined) ?? []).map((m) => String(m['@odata.id']));
  }

  private etag(path: string): string { return `W/"${this.versions.get(path) ?? 1}"`; }

  private send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    const data = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'OData-Version': '4.0', ...headers });
    res.end(data);
  }

  private error(res: ServerResponse, status: number, messageId: string, message: string): void {
    // Redfish error payload, DSP0266 section 9.6.
    this.send(res, status, { error: { code: `Base.1.0.${messageId}`, message, '@Message.ExtendedInfo': [{ MessageId: `Base.1.0.${messageId}`, Message: message }] } });
  }

  private authorised(req: IncomingMessage): boolean {
    const token = req.headers['x-auth-token'];
    const timeoutMs = this.opts.sessionTimeoutMs ?? 1_800_000;
    if (typeof token === 'string') {
      for (const s of this.sessions.values()) {
        if (s.token.length === token.length && timingSafeEqual(Buffer.from(s.token), Buffer.from(token))) {
          if (Date.now() - s.lastUsedMs > timeoutMs) { this.sessions.delete(s.id); return false; }
          s.lastUsedMs = Date.now();
          return true;
        }
      }
      return false;
    }
    const auth = req.headers.authorization;
    if ((this.opts.basicAuth ?? true) && auth?.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      return this.credentialsOk(u, rest.join(':'));
    }
    return false;
  }

  private credentialsOk(user: unknown, password: unknown): boolean {
    const a = Buffer.from(`${String(user)}\0${String(password)}`);
    const b = Buffer.from(`${this.opts.username ?? 'admin'}\0${this.opts.password ?? 'password'}`);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async readBody(req: IncomingMessage): Promise<Resource> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) { size += (c as Buffer).length; if (size > 1 << 20) throw new Error('body too large'); chunks.push(c as Buffer); }
    const text = Buffer.concat(chunks).toString();
    return text ? JSON.parse(text) as Resource : {};
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requestCount++;
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const sessionsPath = '/redfish/v1/SessionService/Sessions';
    // The service root and session creation are reachable without auth (DSP0266 section 13.3.1).
    if (method === 'GET' && (path === '/redfish' || path === '/redfish/v1')) {
      return this.send(res, 200, path === '/redfish' ? { v1: '/redfish/v1/' } : this.res.get('/redfish/v1'));
    }
    if (method === 'POST' && path === sessionsPath) {
      if (this.opts.sessions === false) return this.error(res, 405, 'OperationNotAllowed', 'sessions disabled');
      let body: Resource;
      try { body = await this.readBody(req); } catch { return this.error(res, 400, 'MalformedJSON', 'body is not JSON'); }
      if (!this.credentialsOk(body.UserName, body.Password)) return this.error(res, 401, 'NoValidSession', 'invalid credentials');
      const id = randomBytes(8).toString('hex');
      const token = randomBytes(24).toString('hex');
      this.sessions.set(id, { id, token, lastUsedMs: Date.now() });
      const loc = `${sessionsPath}/${id}`;
      return this.send(res, 201, { '@odata.id': loc, Id: id, UserName: body.UserName }, { 'X-Auth-Token': token, Location: loc });
    }
    if (!this.authorised(req)) return this.error(res, 401, 'NoValidSession', 'authentication required');

    if (method === 'DELETE' && path.startsWith(`${sessionsPath}/`)) {
      const id = path.slice(sessionsPath.length + 1);
      return this.sessions.delete(id) ? this.send(res, 204) : this.error(res, 404, 'ResourceMissingAtURI', path);
    }
    if (method === 'GET') {
      const r = this.res.get(path);
      if (!r) return this.error(res, 404, 'ResourceMissingAtURI', path);
      if (this.versions.has(path) && (this.opts.etags ?? true)) {
        const tag = this.etag(path);
        return this.send(res, 200, { ...r, '@odata.etag': tag }, { ETag: tag });
      }
      return this.send(res, 200, r);
    }
    const resetMatch = /^(.*)\/Actions\/ComputerSystem\.Reset$/.exec(path);
    if (method === 'POST' && resetMatch && this.versions.has(resetMatch[1])) {
      return this.reset(resetMatch[1], await this.readBody(req), res);
    }
    if (method === 'PATCH' && this.versions.has(path)) return this.patchSystem(path, req, res);
    return this.error(res, 405, 'OperationNotAllowed', `${method} ${path}`);
  }

  private allowedResets(path: string): string[] {
    const reset = ((this.res.get(path)!.Actions as Resource | undefined)?.['#ComputerSystem.Reset'] ?? {}) as Resource;
    const infoPath = reset['@Redfish.ActionInfo'] as string | undefined;
    if (infoPath && this.res.has(infoPath)) {
      const p = (this.res.get(infoPath)!.Parameters as Resource[]).find((x) => x.Name === 'ResetType');
      return (p?.AllowableValues as string[]) ?? STD_RESET;
    }
    return (reset['ResetType@Redfish.AllowableValues'] as string[]) ?? STD_RESET;
  }

  private reset(path: string, body: Resource, res: ServerResponse): void {
    const type = String(body.ResetType);
    if (!this.allowedResets(path).includes(type)) {
      return this.error(res, 400, 'ActionParameterNotSupported', `ResetType ${type} is not supported by this system`);
    }
    const sys = this.res.get(path)!;
    const current = sys.PowerState;
    let target: 'On' | 'Off' | 'cycle';
    if (type === 'On' || type === 'ForceOn') target = 'On';
    else if (type === 'ForceOff' || type === 'GracefulShutdown') target = 'Off';
    else if (type === 'PushPowerButton') target = current === 'On' ? 'Off' : 'On';
    else if (type === 'Nmi') return this.send(res, 204);
    else target = 'cycle';
    const delayMs = this.opts.resetDelayMs ?? 0;
    const finish = (): void => {
      if (target === 'cycle') { this.applyPower(path, 'Off'); this.applyPower(path, 'On'); } else this.applyPower(path, target);
    };
    if (delayMs > 0) {
      sys.PowerState = target === 'Off' ? 'PoweringOff' : 'PoweringOn';
      const t = setTimeout(() => { this.timers.delete(t); finish(); }, delayMs);
      this.timers.add(t);
    } else finish();
    this.send(res, 204);
  }

  private applyPower(path: string, state: 'On' | 'Off'): void {
    const sys = this.res.get(path)!;
    sys.PowerState = state;
    this.touch(path);
    const id = String(sys.Id);
    if (this.opts.powerCommands?.[id]) {
      if (state === 'On') { this.stopProcess(id); this.startProcess(id); } else this.stopProcess(id);
    }
  }

  private startProcess(id: string): void {
    const cmd = this.opts.powerCommands![id];
    const child = spawn(cmd.command, cmd.args ?? [], { stdio: 'ignore' });
    child.on('error', () => this.procs.delete(id));
    child.on('exit', () => { if (this.procs.get(id) === child) this.procs.delete(id); });
    this.procs.set(id, child);
  }

  private stopProcess(id: string): void {
    const child = this.procs.get(id);
    this.procs.delete(id);
    child?.kill('SIGTERM');
  }

  private async patchSystem(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.pendingRaces > 0) { this.pendingRaces--; this.touch(path); }
    const ifMatch = req.headers['if-match'];
    // RFC 7232 section 3.1: a non-matching If-Match must yield 412.
    if ((this.opts.etags ?? true) && typeof ifMatch === 'string' && ifMatch !== '*' && ifMatch !== this.etag(path)) {
      this.preconditionFailures++;
      return this.error(res, 412, 'PreconditionFailed', `ETag ${ifMatch} does not match ${this.etag(path)}`);
    }
    let body: Resource;
    try { body = await this.readBody(req); } catch { return this.error(res, 400, 'MalformedJSON', 'body is not JSON'); }
    const sys = this.res.get(path)!;
    const boot = (sys.Boot ?? {}) as Resource;
    const patch = (body.Boot ?? {}) as Resource;
    const checks: [string, unknown][] = [
      ['BootSourceOverrideTarget', boot['BootSourceOverrideTarget@Redfish.AllowableValues']],
      ['BootSourceOverrideEnabled', ['Disabled', 'Once', 'Continuous']],
      ['BootSourceOverrideMode', boot['BootSourceOverrideMode@Redfish.AllowableValues'] ?? ['UEFI', 'Legacy']],
    ];
    for (const [field, allowed] of checks) {
      if (field in patch && Array.isArray(allowed) && !allowed.includes(patch[field])) {
        return this.error(res, 400, 'PropertyValueNotInList', `Boot.${field}=${JSON.stringify(patch[field])} is not one of ${allowed.join(', ')}`);
      }
    }
    for (const k of Object.keys(body)) if (k !== 'Boot') return this.error(res, 400, 'PropertyNotWritable', `${k} is not writable here`);
    sys.Boot = { ...boot, ...patch };
    this.touch(path);
    const tag = this.etag(path);
    this.send(res, 200, { ...sys, '@odata.etag': tag }, { ETag: tag });
  }
}
