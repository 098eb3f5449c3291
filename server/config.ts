import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isIP } from 'node:net';
import YAML from 'yaml';
import { OspError } from '../common/errors.js';
import { defaultOspdDataDir } from '../common/ospd-data-dir.js';

/** HOST:PORT parsed once at the edge; `null` means the listener is off. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Loopback per RFC 1122 section 3.2.1.3 (127/8) and RFC 4291 section 2.5.3 (::1). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
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
  /** PXE (issue 4): DHCP, TFTP and HTTP boot; null listeners are off. */
  pxe: PxeSettings;
  /** Answer unknown machines (DHCP, boot script, ramdisk lookup) so they can enrol themselves. */
  discovery: boolean;
  /** Inspection and cleaning (issue 8); discovery is the top-level flag, copied in. */
  inspection: { inspectWaitTimeoutMs: number; cleanWaitTimeoutMs: number; discovery: boolean };
  /** Largest image file an upload may send (issue 11). */
  imageMaxBytes: number;
  /** Deploys (issue 11). */
  provision: ProvisionConfig;
  /** The stack engine (issue 12). */
  stacks: StackConfig;
}

export interface StackConfig {
  /** Resources of one stack (each nested stack has its own) worked on at once. */
  concurrency: number;
}

export interface ProvisionConfig {
  /** `wait call-back` of a deploy; null: the clean wait's. */
  deployWaitTimeoutMs: number | null;
  /** After the reboot into the disk: a deployed agent not connected by then is a warning, not a failure. */
  deployBootTimeoutMs: number;
  /** A ramdisk still connected after inspection or cleaning stays up for the next operation (node capability fast_track overrides). */
  fastTrack: boolean;
  /** How long such a ramdisk waits, powered on, before it is powered off as usual. */
  fastTrackTimeoutMs: number;
}

export interface PxeSettings {
  httpListen: ListenAddress | null;
  tftpListen: ListenAddress | null;
  /** Where DHCP listens; it answers only when dhcpInterface is set too. */
  dhcpListen: ListenAddress | null;
  /** Default <data-dir>/tftp and <data-dir>/http, settled once the data dir is known. */
  tftpRoot: string;
  httpRoot: string;
  dhcpInterface: string | null;
  dhcpMode: 'full' | 'proxy';
  dhcpRange: { start: string; end: string } | null;
  dhcpRouter: string | null;
  dhcpDns: string[];
  ramdiskKernel: string | null;
  ramdiskInitramfs: string | null;
  /** Appended to the ramdisk's kernel command line (never secrets). */
  kernelArgs: string;
}

export interface TelemetryConfig {
  mqttListen: ListenAddress | null;
  mqttPlainListen: ListenAddress | null;
  /** MQTT over WebSocket (WSS); absent means off, the default. */
  mqttWsListen: ListenAddress | null;
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

function parseBool(key: string, raw: Raw): boolean {
  if (raw !== true && raw !== false && raw !== 'true' && raw !== 'false') fail(key, raw, 'true or false');
  return raw === true || raw === 'true';
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

/**
 * A deployment's resource mostly waits for its node's agent, and a group's
 * members are on different nodes, so the bound is on ospd's own work, not
 * the fleet's: test/bench/stack-bench.mjs measured the choice.
 */
const DEFAULT_STACK_CONCURRENCY = 64;

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
  ...pxeSettings(),
  {
    key: 'inspect-wait-timeout-ms', arg: 'MS', describe: 'how long inspection waits for the ramdisk agent (default 900000, 15 min; per node: capability inspect_wait_timeout_ms)',
    apply: (c, raw) => (c.inspection!.inspectWaitTimeoutMs = parseInt10('inspect-wait-timeout-ms', raw, 1_000, 86_400_000)),
  },
  {
    key: 'clean-wait-timeout-ms', arg: 'MS', describe: 'how long cleaning waits for the ramdisk agent (default 1800000, 30 min; per node: capability clean_wait_timeout_ms)',
    apply: (c, raw) => (c.inspection!.cleanWaitTimeoutMs = parseInt10('clean-wait-timeout-ms', raw, 1_000, 86_400_000)),
  },
  {
    key: 'deploy-wait-timeout-ms', arg: 'MS', describe: "how long a deploy waits for the ramdisk agent to call back and write (default: clean-wait-timeout-ms; per node: capability deploy_wait_timeout_ms)",
    apply: (c, raw) => (c.provision!.deployWaitTimeoutMs = parseInt10('deploy-wait-timeout-ms', raw, 1_000, 86_400_000)),
  },
  {
    key: 'deploy-boot-timeout-ms', arg: 'MS', describe: "how long after a deploy's reboot the deployed system's agent may take to connect before a warning event (default 1800000, 30 min)",
    apply: (c, raw) => (c.provision!.deployBootTimeoutMs = parseInt10('deploy-boot-timeout-ms', raw, 1_000, 86_400_000)),
  },
  {
    key: 'fast-track', describe: 'keep a ramdisk that finished inspection or cleaning running, so the next cleaning or deploy needs no power cycle (default off; per node: capability fast_track=true|false)',
    apply: (c, raw) => (c.provision!.fastTrack = parseBool('fast-track', raw)),
  },
  {
    key: 'fast-track-timeout-ms', arg: 'MS', describe: 'how long a fast-track ramdisk waits for its next command before it is powered off (default 300000, 5 min)',
    apply: (c, raw) => (c.provision!.fastTrackTimeoutMs = parseInt10('fast-track-timeout-ms', raw, 1_000, 86_400_000)),
  },
  {
    key: 'stack-concurrency', arg: 'N', describe: `resources of one stack (each nested stack counts alone) created, updated or deleted at once (default ${DEFAULT_STACK_CONCURRENCY})`,
    apply: (c, raw) => (c.stacks!.concurrency = parseInt10('stack-concurrency', raw, 1, 10_000)),
  },
  {
    key: 'image-max-bytes', arg: 'BYTES', describe: 'largest image file an upload may send (default 68719476736, 64 GiB)',
    apply: (c, raw) => (c.imageMaxBytes = parseInt10('image-max-bytes', raw, 1, Number.MAX_SAFE_INTEGER)),
  },
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
        // Unencrypted MQTT carries tokens in clear: loopback only.
        if (a && !isLoopbackHost(a.host)) {
          fail('mqtt-plain-listen', raw, "a loopback HOST:PORT (127.0.0.0/8, [::1] or localhost) or 'off'");
        }
        c.telemetry!.mqttPlainListen = a;
      },
    },
    {
      key: 'mqtt-ws-listen', arg: 'HOST:PORT', describe: "MQTT over WebSocket, TLS only (wss://HOST:PORT/mqtt), or 'off' (default off)",
      apply: (c, raw) => (c.telemetry!.mqttWsListen = parseListen('mqtt-ws-listen', raw, true)),
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

function pxeSettings(): Setting[] {
  const ipv4 = (key: string, raw: Raw): string => {
    if (typeof raw !== 'string' || isIP(raw) !== 4) fail(key, raw, 'an IPv4 address');
    return raw;
  };
  return [
    {
      key: 'http-listen', arg: 'HOST:PORT', describe: "HTTP boot scripts, artifacts and /metrics (default 0.0.0.0:8080, or 'off')",
      apply: (c, raw) => (c.pxe!.httpListen = parseListen('http-listen', raw, true)),
    },
    {
      key: 'tftp-listen', arg: 'HOST:PORT', describe: "read-only TFTP (default 0.0.0.0:69, or 'off')",
      apply: (c, raw) => (c.pxe!.tftpListen = parseListen('tftp-listen', raw, true)),
    },
    {
      key: 'dhcp-listen', arg: 'HOST:PORT', describe: "DHCP socket (default 0.0.0.0:67, or 'off'); DHCP runs only with dhcp-interface",
      apply: (c, raw) => (c.pxe!.dhcpListen = parseListen('dhcp-listen', raw, true)),
    },
    { key: 'tftp-root', arg: 'DIR', describe: 'TFTP root (default <data-dir>/tftp; the iPXE binaries are placed there)', apply: (c, raw) => (c.pxe!.tftpRoot = path.resolve(parseString('tftp-root', raw))) },
    { key: 'http-root', arg: 'DIR', describe: 'HTTP artifact root (default <data-dir>/http; holds ramdisk.kernel and ramdisk.initramfs)', apply: (c, raw) => (c.pxe!.httpRoot = path.resolve(parseString('http-root', raw))) },
    {
      key: 'dhcp-interface', arg: 'IF', describe: 'provisioning interface; DHCP is off without it',
      apply: (c, raw) => {
        if (typeof raw !== 'string' || !/^[A-Za-z0-9_.:@-]{1,15}$/.test(raw)) fail('dhcp-interface', raw, 'a network interface name (1-15 characters)');
        c.pxe!.dhcpInterface = raw;
      },
    },
    {
      key: 'dhcp-mode', arg: 'MODE', describe: 'full (address pool) or proxy (boot information only, beside another DHCP server); default full',
      apply: (c, raw) => {
        if (raw !== 'full' && raw !== 'proxy') fail('dhcp-mode', raw, "'full' or 'proxy'");
        c.pxe!.dhcpMode = raw;
      },
    },
    {
      key: 'dhcp-range', arg: 'START,END', describe: 'address pool in full mode, e.g. 10.0.0.100,10.0.0.200',
      apply: (c, raw) => {
        const parts = typeof raw === 'string' ? raw.split(',').map((x) => x.trim()) : [];
        if (parts.length !== 2 || parts.some((x) => isIP(x) !== 4)) fail('dhcp-range', raw, 'START,END: two IPv4 addresses');
        c.pxe!.dhcpRange = { start: parts[0], end: parts[1] };
      },
    },
    { key: 'dhcp-router', arg: 'IP', describe: 'default gateway handed out (option 3)', apply: (c, raw) => (c.pxe!.dhcpRouter = ipv4('dhcp-router', raw)) },
    {
      key: 'dhcp-dns', arg: 'IP', repeatable: true, describe: 'DNS server handed out (option 6; repeatable)',
      apply: (c, raw) => (c.pxe!.dhcpDns = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => String(v).split(',')).map((v) => ipv4('dhcp-dns', v.trim()))),
    },
    {
      key: 'discovery', describe: 'answer machines nobody registered, so they boot the ramdisk and enrol themselves (default off)',
      apply: (c, raw) => (c.discovery = parseBool('discovery', raw)),
    },
    { key: 'ramdisk-kernel', arg: 'FILE', describe: 'ramdisk kernel (default <http-root>/ramdisk.kernel)', apply: (c, raw) => (c.pxe!.ramdiskKernel = path.resolve(parseString('ramdisk-kernel', raw))) },
    { key: 'ramdisk-initramfs', arg: 'FILE', describe: 'ramdisk initramfs (default <http-root>/ramdisk.initramfs)', apply: (c, raw) => (c.pxe!.ramdiskInitramfs = path.resolve(parseString('ramdisk-initramfs', raw))) },
    {
      key: 'kernel-args', arg: 'ARGS', describe: "extra ramdisk kernel arguments such as 'console=ttyS0' (never secrets)",
      apply: (c, raw) => {
        if (typeof raw !== 'string' || /["\n]/.test(raw)) fail('kernel-args', raw, 'one line of kernel arguments without quotes');
        c.pxe!.kernelArgs = raw;
      },
    },
  ];
}

function defaults(): OspdConfig {
  return {
    dataDir: defaultOspdDataDir(),
    grpcListen: { host: '0.0.0.0', port: 6385 },
    advertiseAddresses: [],
    logLevel: 'info',
    shutdownGraceMs: 10_000,
    bmc: {
      ipmiCipherSuites: [17, 3], minIntervalMs: 1000, callTimeoutMs: 20_000, powerWaitTimeoutMs: 60_000,
      syncIntervalMs: 60_000, syncConcurrency: 32, syncMaxFailures: 3,
    },
    telemetry: {
      mqttListen: { host: '0.0.0.0', port: 8883 }, mqttPlainListen: { host: '127.0.0.1', port: 1883 }, mqttWsListen: null,
      metricsRawWindowMs: 6 * 3600_000, metricsRetentionMs: 30 * 24 * 3600_000,
    },
    pxe: {
      httpListen: { host: '0.0.0.0', port: 8080 }, tftpListen: { host: '0.0.0.0', port: 69 }, dhcpListen: { host: '0.0.0.0', port: 67 },
      tftpRoot: '', httpRoot: '', dhcpInterface: null, dhcpMode: 'full', dhcpRange: null, dhcpRouter: null, dhcpDns: [],
      ramdiskKernel: null, ramdiskInitramfs: null, kernelArgs: '',
    },
    discovery: false,
    inspection: { inspectWaitTimeoutMs: 15 * 60_000, cleanWaitTimeoutMs: 30 * 60_000, discovery: false },
    imageMaxBytes: 64 * 1024 ** 3,
    provision: { deployWaitTimeoutMs: null, deployBootTimeoutMs: 30 * 60_000, fastTrack: false, fastTrackTimeoutMs: 5 * 60_000 },
    stacks: { concurrency: DEFAULT_STACK_CONCURRENCY },
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
  cfg.inspection!.discovery = cfg.discovery!;
  const p = cfg.pxe!;
  if (!p.tftpRoot) p.tftpRoot = path.join(cfg.dataDir!, 'tftp');
  if (!p.httpRoot) p.httpRoot = path.join(cfg.dataDir!, 'http');
  if (p.dhcpInterface && p.dhcpMode === 'full' && !p.dhcpRange) fail('dhcp-range', undefined, 'START,END: full-mode DHCP needs an address pool');
  const t = cfg.telemetry!;
  if (t.metricsRetentionMs < t.metricsRawWindowMs) {
    fail('metrics-retention-ms', t.metricsRetentionMs, `at least metrics-raw-window-ms (${t.metricsRawWindowMs})`);
  }
  return cfg as OspdConfig;
}

/** The names the server certificate must carry for this configuration. */
export function certificateNames(cfg: OspdConfig, machineFacingHost: string): string[] {
  const names = ['localhost', '127.0.0.1', '::1', os.hostname(), ...cfg.advertiseAddresses, machineFacingHost];
  const h = cfg.grpcListen.host;
  if (h !== '0.0.0.0' && h !== '::') names.push(h);
  return [...new Set(names)];
}
