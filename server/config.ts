import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isIP } from 'node:net';
import YAML from 'yaml';
import { OspError } from '../common/errors.js';

/** HOST:PORT parsed once at the edge; `null` means the listener is off. */
export interface ListenAddress {
  host: string;
  port: number;
}

export interface OspdConfig {
  dataDir: string;
  grpcListen: ListenAddress;
  advertiseAddresses: string[];
  logLevel: string;
  shutdownGraceMs: number;
  /** BMC control (issue 3): see README's configuration table. */
  bmc: BmcConfig;
  /** Telemetry (issue 6): MQTT listeners (null = off) and metrics retention. */
  telemetry: TelemetryConfig;
}

export interface TelemetryConfig {
  mqttListen: ListenAddress | null;
  mqttPlainListen: ListenAddress | null;
  metricsRawWindowMs: number;
  metricsRetentionMs: number;
}

export interface BmcConfig {
  ipmiCipherSuites: number[];
  minIntervalMs: number;
  callTimeoutMs: number;
  powerWaitTimeoutMs: number;
  /** 0 = power sync off. */
  syncIntervalMs: number;
  syncConcurrency: number;
  syncMaxFailures: number;
}

type Raw = string | number | boolean | string[] | null | undefined;

interface Setting {
  /** The YAML key and, with `--` before it, the flag: one name for both. */
  key: string;
  describe: string;
  /** Flag value placeholder for --help; absent for booleans. */
  arg?: string;
  repeatable?: boolean;
  apply(cfg: Partial<OspdConfig>, raw: Raw): void;
}

function fail(key: string, value: unknown, expected: string): never {
  throw new OspError('CONFIG_INVALID', `config: ${key}: ${JSON.stringify(value)} is not valid: expected ${expected}`, { key });
}

export function parseListen(key: string, raw: Raw, allowOff: boolean): ListenAddress | null {
  const expected = `HOST:PORT${allowOff ? " or 'off'" : ''} (e.g. 127.0.0.1:6385, [::1]:6385)`;
  if (typeof raw !== 'string') fail(key, raw, expected);
  if (raw === 'off') {
    if (allowOff) return null;
    fail(key, raw, 'HOST:PORT (this listener cannot be turned off)');
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(raw);
  if (!m) fail(key, raw, expected);
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port > 65535) fail(key, raw, 'a port from 0 (any free port) to 65535');
  if (m[1] && isIP(host) !== 6) fail(key, raw, 'an IPv6 address inside [ ]');
  return { host, port };
}

function parseString(key: string, raw: Raw): string {
  if (typeof raw !== 'string' || raw === '') fail(key, raw, 'a non-empty string');
  return raw;
}

function parseInt10(key: string, raw: Raw, min: number, max: number): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) fail(key, raw, `a whole number from ${min} to ${max}`);
  return n;
}

function parseCipherSuites(key: string, raw: Raw): number[] {
  const expected = 'a comma-separated list of IPMI cipher suites from 1 to 17, e.g. 17,3 (suite 0 has no authentication)';
  const parts = typeof raw === 'number' ? [String(raw)] : typeof raw === 'string' ? raw.split(',').map((p) => p.trim()) : [];
  if (!parts.length || parts.some((p) => !/^\d+$/.test(p) || +p < 1 || +p > 17)) fail(key, raw, expected);
  return parts.map(Number);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const settings: Setting[] = [
  {
    key: 'data-dir',
    arg: 'DIR',
    describe: 'state directory: database, CA, tokens (default /var/lib/ospd as root, else ~/.local/share/ospd)',
    apply: (c, raw) => (c.dataDir = path.resolve(parseString('data-dir', raw))),
  },
  {
    key: 'grpc-listen',
    arg: 'HOST:PORT',
    describe: 'gRPC API (TLS) listen address (default 0.0.0.0:6385)',
    apply: (c, raw) => (c.grpcListen = parseListen('grpc-listen', raw, false)!),
  },
  {
    key: 'advertise-address',
    arg: 'ADDR',
    repeatable: true,
    describe: 'address machines and clients use to reach ospd; added to the certificate (repeatable)',
    apply: (c, raw) => {
      const list = Array.isArray(raw) ? raw : [raw];
      c.advertiseAddresses = list.map((v) => {
        if (typeof v !== 'string' || !/^[A-Za-z0-9.:-]+$/.test(v)) fail('advertise-address', v, 'an IP address or DNS name');
        return v;
      });
    },
  },
  {
    key: 'log-level',
    arg: 'LEVEL',
    describe: `log level: ${LOG_LEVELS.join(', ')} (default info)`,
    apply: (c, raw) => {
      if (typeof raw !== 'string' || !LOG_LEVELS.includes(raw)) fail('log-level', raw, `one of ${LOG_LEVELS.join(', ')}`);
      c.logLevel = raw;
    },
  },
  {
    key: 'shutdown-grace-ms',
    arg: 'MS',
    describe: 'how long in-flight calls may finish after SIGTERM before they are cut (default 10000)',
    apply: (c, raw) => (c.shutdownGraceMs = parseInt10('shutdown-grace-ms', raw, 0, 600_000)),
  },
  ...bmcSettings(),
  ...telemetrySettings(),
];

function telemetrySettings(): Setting[] {
  return [
    {
      key: 'mqtt-listen', arg: 'HOST:PORT', describe: "MQTT broker TLS listener, or 'off' (default 0.0.0.0:8883)",
      apply: (c, raw) => (c.telemetry!.mqttListen = parseListen('mqtt-listen', raw, true)),
    },
    {
      key: 'mqtt-plain-listen', arg: 'HOST:PORT', describe: "MQTT plain listener, loopback addresses only, or 'off' (default 127.0.0.1:1883)",
      apply: (c, raw) => {
        const a = parseListen('mqtt-plain-listen', raw, true);
        // Unencrypted MQTT carries tokens in clear: loopback only (RFC 1122 section 3.2.1.3, RFC 4291 section 2.5.3).
        if (a && a.host !== 'localhost' && a.host !== '::1' && !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a.host)) {
          fail('mqtt-plain-listen', raw, "a loopback HOST:PORT (127.0.0.0/8, [::1] or localhost) or 'off'");
        }
        c.telemetry!.mqttPlainListen = a;
      },
    },
    {
      key: 'metrics-raw-window-ms', arg: 'MS', describe: 'how long node metrics are kept raw before per-minute averaging (default 21600000, 6 h)',
      apply: (c, raw) => (c.telemetry!.metricsRawWindowMs = parseInt10('metrics-raw-window-ms', raw, 60_000, 31_536_000_000)),
    },
    {
      key: 'metrics-retention-ms', arg: 'MS', describe: 'how long node metrics are kept at all (default 2592000000, 30 days); at least metrics-raw-window-ms',
      apply: (c, raw) => (c.telemetry!.metricsRetentionMs = parseInt10('metrics-retention-ms', raw, 60_000, 315_360_000_000)),
    },
  ];
}

function bmcSettings(): Setting[] {
  const int = (key: string, describe: string, min: number, max: number, set: (b: BmcConfig, v: number) => void): Setting =>
    ({ key, arg: 'N', describe, apply: (c, raw) => set(c.bmc!, parseInt10(key, raw, min, max)) });
  return [
    {
      key: 'ipmi-cipher-suites', arg: 'LIST', describe: 'IPMI cipher suites to try in order (default 17,3)',
      apply: (c, raw) => (c.bmc!.ipmiCipherSuites = parseCipherSuites('ipmi-cipher-suites', raw)),
    },
    int('bmc-min-interval-ms', 'minimum gap between two IPMI commands to one BMC (default 1000)', 0, 60_000, (b, v) => (b.minIntervalMs = v)),
    int('bmc-call-timeout-ms', 'bound on one BMC call (default 20000)', 100, 600_000, (b, v) => (b.callTimeoutMs = v)),
    int('power-wait-timeout-ms', 'how long a power action waits for the BMC to report the target state (default 60000)', 100, 3_600_000, (b, v) => (b.powerWaitTimeoutMs = v)),
    int('power-sync-interval-ms', 'power-state sync period; 0 turns it off (default 60000)', 0, 86_400_000, (b, v) => (b.syncIntervalMs = v)),
    int('power-sync-concurrency', 'BMCs the power sync reads at once (default 32)', 1, 1024, (b, v) => (b.syncConcurrency = v)),
    int('power-sync-max-failures', 'consecutive failed reads before the sync puts a node into maintenance (default 3)', 1, 1000, (b, v) => (b.syncMaxFailures = v)),
  ];
}

export function defaultDataDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/ospd';
  return path.join(os.homedir(), '.local', 'share', 'ospd');
}

function defaults(): OspdConfig {
  return {
    dataDir: defaultDataDir(),
    grpcListen: { host: '0.0.0.0', port: 6385 },
    advertiseAddresses: [],
    logLevel: 'info',
    shutdownGraceMs: 10_000,
    bmc: {
      ipmiCipherSuites: [17, 3], minIntervalMs: 1000, callTimeoutMs: 20_000, powerWaitTimeoutMs: 60_000,
      syncIntervalMs: 60_000, syncConcurrency: 32, syncMaxFailures: 3,
    },
    telemetry: {
      mqttListen: { host: '0.0.0.0', port: 8883 }, mqttPlainListen: { host: '127.0.0.1', port: 1883 },
      metricsRawWindowMs: 6 * 3600_000, metricsRetentionMs: 30 * 24 * 3600_000,
    },
  };
}

/** Reads a YAML config file into raw key/values, refusing unknown keys. */
export async function readConfigFile(file: string): Promise<Record<string, Raw>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new OspError('CONFIG_INVALID', `config: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new OspError('CONFIG_INVALID', `config: ${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new OspError('CONFIG_INVALID', `config: ${file}: expected a mapping of settings at the top level`);
  }
  const known = new Set(settings.map((s) => s.key));
  for (const k of Object.keys(doc)) {
    if (!known.has(k)) throw new OspError('CONFIG_INVALID', `config: ${file}: unknown key '${k}' (known: ${[...known].join(', ')})`, { key: k });
  }
  return doc as Record<string, Raw>;
}

/** Defaults, then the file, then flags: later wins. Throws CONFIG_INVALID naming the key. */
export function resolveConfig(fromFile: Record<string, Raw>, fromFlags: Record<string, Raw>): OspdConfig {
  const cfg: Partial<OspdConfig> = defaults();
  for (const layer of [fromFile, fromFlags]) {
    for (const s of settings) {
      if (layer[s.key] !== undefined) s.apply(cfg, layer[s.key]);
    }
  }
  const t = cfg.telemetry!;
  if (t.metricsRetentionMs < t.metricsRawWindowMs) {
    fail('metrics-retention-ms', t.metricsRetentionMs, `at least metrics-raw-window-ms (${t.metricsRawWindowMs})`);
  }
  return cfg as OspdConfig;
}

/** The names the server certificate must carry for this configuration. */
export function certificateNames(cfg: OspdConfig): string[] {
  const names = ['localhost', '127.0.0.1', '::1', os.hostname(), ...cfg.advertiseAddresses];
  const h = cfg.grpcListen.host;
  if (h !== '0.0.0.0' && h !== '::') names.push(h);
  return [...new Set(names)];
}
