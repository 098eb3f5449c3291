import { Agent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { BmcError, invalidInfo } from './types.js';

export interface RedfishResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

export interface RedfishConnectionOptions {
  node: string;
  address: string;
  port: number;
  username: string;
  password: string;
  verifyCa: boolean | string;
  timeoutMs: number;
}

/**
 * One authenticated connection to one Redfish service: keep-alive TLS, a
 * SessionService session reused across calls (Basic auth when the service
 * has no sessions), and one re-login when the session expired (401).
 */
export class RedfishConnection {
  private readonly agent: Agent;
  private token?: string;
  private sessionUri?: string;
  private basic = false;
  /** Requests sent, for the benchmark's requests-per-node figure. */
  requests = 0;

  constructor(private readonly o: RedfishConnectionOptions) {
    let ca: string | undefined;
    if (typeof o.verifyCa === 'string') {
      try { ca = readFileSync(o.verifyCa, 'utf8'); } catch (e) {
        throw invalidInfo('verify_ca', o.verifyCa, `a readable CA bundle path (${(e as Error).message})`);
      }
    }
    this.agent = new Agent({ keepAlive: true, maxSockets: 2, ca, rejectUnauthorized: o.verifyCa !== false });
  }

  get bmc(): string { return `${this.o.address}:${this.o.port}`; }

  private err(kind: 'auth' | 'unreachable' | 'timeout' | 'bmc' | 'unsupported', detail: string, code?: string): BmcError {
    return new BmcError(kind, this.o.node, this.bmc, detail, code);
  }

  /** Raw HTTPS exchange; maps transport failures to typed errors. */
  raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RedfishResponse> {
    this.requests++;
    const data = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest({
        host: this.o.address, port: this.o.port, method, path, agent: this.agent,
        headers: { Accept: 'application/json', 'OData-Version': '4.0', ...(data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}), ...headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: Record<string, unknown>;
          try { parsed = text ? JSON.parse(text) as Record<string, unknown> : {}; } catch { parsed = { raw: text.slice(0, 200) }; }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
        res.on('error', (e) => reject(this.err('unreachable', `response aborted: ${e.message}`)));
      });
      req.setTimeout(this.o.timeoutMs, () => req.destroy(this.err('timeout', `no answer to ${method} ${path} within ${this.o.timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof BmcError) return reject(e);
        if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(e.code ?? '')) {
          return reject(this.err('unreachable', `TLS verification failed (${e.code}); set verify_ca to the BMC's CA bundle path or false`));
        }
        reject(this.err('unreachable', `${e.code ?? ''} ${e.message}`.trim()));
      });
      if (data) req.write(data);
      req.end();
    });
  }

  private authHeaders(): Record<string, string> {
    if (this.token) return { 'X-Auth-Token': this.token };
    if (this.basic) return { Authorization: `Basic ${Buffer.from(`${this.o.username}:${this.o.password}`).toString('base64')}` };
    return {};
  }

  /** Creates a session (DSP0266 section 13.3.4); falls back to Basic auth where sessions are unavailable. */
  async login(sessionsPath = '/redfish/v1/SessionService/Sessions'): Promise<void> {
    this.token = undefined;
    const r = await this.raw('POST', sessionsPath, { UserName: this.o.username, Password: this.o.password });
    const token = r.headers['x-auth-token'];
    if (r.status === 201 || (r.status === 200 && token)) {
      this.token = String(token);
      this.sessionUri = typeof r.headers.location === 'string' ? new URL(r.headers.location, 'https://x').pathname : undefined;
      this.basic = false;
      return;
    }
    if (r.status === 401 || r.status === 403) throw this.err('auth', 'credentials rejected by SessionService', String(r.status));
    this.basic = true;
  }

  /** An authenticated request; re-logs in once if the session expired. */
  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RedfishResponse> {
    if (!this.token && !this.basic) await this.login();
    let r = await this.raw(method, path, body, { ...headers, ...this.authHeaders() });
    if (r.status === 401 && this.token) {
      await this.login();
      r = await this.raw(method, path, body, { ...headers, ...this.authHeaders() });
    }
    if (r.status === 401 || r.status === 403) throw this.err('auth', `${method} ${path} rejected`, String(r.status));
    return r;
  }

  /** A request that must succeed (2xx); otherwise a BmcError with the Redfish MessageId. */
  async ok(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RedfishResponse> {
    const r = await this.call(method, path, body, headers);
    if (r.status >= 200 && r.status < 300) return r;
    const e = r.body.error as { code?: string; message?: string } | undefined;
    // 503 is kept as the code so the retry policy treats it as transient.
    throw this.err('bmc', `${method} ${path}: HTTP ${r.status} ${e?.message ?? ''}`.trim(), r.status === 503 ? '503' : (e?.code ?? String(r.status)));
  }

  async close(): Promise<void> {
    if (this.token && this.sessionUri) {
      await this.raw('DELETE', this.sessionUri, undefined, { 'X-Auth-Token': this.token }).catch(() => undefined);
    }
    this.token = undefined;
    this.agent.destroy();
  }
}
