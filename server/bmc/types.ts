import { OspError, type ErrorCode, type ErrorDetails } from '../../common/errors.js';

/** Power states a BMC can report. `unknown` when the BMC answers something we cannot map. */
export type PowerState = 'on' | 'off' | 'unknown';

/** Power actions the drivers accept (Ironic's vocabulary). */
export type PowerAction = 'on' | 'off' | 'reboot' | 'soft off' | 'soft reboot';
export const POWER_ACTIONS: readonly PowerAction[] = ['on', 'off', 'reboot', 'soft off', 'soft reboot'];

export type BootDevice = 'pxe' | 'disk' | 'cdrom';
export const BOOT_DEVICES: readonly BootDevice[] = ['pxe', 'disk', 'cdrom'];
export type BootMode = 'uefi' | 'bios';

export interface BootDeviceRequest {
  device: BootDevice;
  /** false = next boot only (one-time override). */
  persistent: boolean;
  mode?: BootMode;
}

export interface Capabilities {
  powerActions: PowerAction[];
  bootDevices: BootDevice[];
  bootModes: BootMode[];
  persistentBoot: boolean;
}

/** The generic driver_info keys the store keeps per node. */
export interface DriverInfo {
  address: string;
  port?: number;
  username?: string;
  password?: string;
  /** ipmi only: pin one cipher suite instead of trying the configured order. */
  cipher_suite?: number;
  /** ipmi only: '2.0' (default). '1.5' (`-I lan`) exists only to be refused clearly. */
  protocol_version?: string;
  /** redfish only: the ComputerSystem id (or full path) instead of discovering it. */
  system_id?: string;
  /** redfish only: true (system CAs), false (no verification), or a CA bundle path. */
  verify_ca?: boolean | string;
}

/** What a driver needs to know about the node it talks to. */
export interface NodeTarget {
  uuid: string;
  name?: string;
  driverInfo: DriverInfo;
}

export interface SetPowerOptions {
  /** Wait until the BMC reports the target state; default true. */
  wait?: boolean;
  /** How long to wait for the target state (default per driver, 60 s). */
  waitTimeoutMs?: number;
}

/** The one interface every power driver implements. */
export interface PowerDriver {
  readonly name: string;
  /** Checks driver_info shape without contacting the BMC. Throws NODE_INVALID. */
  validateInfo(info: DriverInfo): void;
  /** Contacts the BMC and proves the credentials work. */
  validate(node: NodeTarget): Promise<void>;
  getPowerState(node: NodeTarget): Promise<PowerState>;
  setPowerState(node: NodeTarget, action: PowerAction, opts?: SetPowerOptions): Promise<PowerState>;
  setBootDevice(node: NodeTarget, req: BootDeviceRequest): Promise<void>;
  capabilities(node: NodeTarget): Promise<Capabilities>;
  /** Releases sessions, timers and temp files. */
  stop(): Promise<void>;
}

export type BmcErrorKind = 'auth' | 'unreachable' | 'timeout' | 'unsupported' | 'bmc' | 'insecure';

const KIND_CODE: Record<BmcErrorKind, ErrorCode> = {
  auth: 'BMC_AUTH_FAILED',
  unreachable: 'BMC_UNREACHABLE',
  timeout: 'BMC_TIMEOUT',
  unsupported: 'BMC_UNSUPPORTED',
  bmc: 'BMC_ERROR',
  insecure: 'BMC_INSECURE',
};

/** A typed BMC failure: always says which node and which BMC. */
export class BmcError extends OspError {
  readonly kind: BmcErrorKind;
  readonly node: string;
  readonly bmcAddress: string;
  /** The BMC's own code (IPMI completion code, Redfish MessageId / HTTP status), when it sent one. */
  readonly bmcCode?: string;

  constructor(kind: BmcErrorKind, node: string, bmcAddress: string, detail: string, bmcCode?: string, extra: ErrorDetails = {}) {
    super(KIND_CODE[kind], `node ${node}: BMC ${bmcAddress}: ${detail}`, { ...extra, node, bmcAddress, bmcCode });
    this.name = 'BmcError';
    this.kind = kind;
    this.node = node;
    this.bmcAddress = bmcAddress;
    this.bmcCode = bmcCode;
  }
}

/** Retrying helps only transient failures; a wrong password stays wrong. */
export function isRetryable(e: unknown): boolean {
  return e instanceof BmcError && (e.kind === 'unreachable' || e.kind === 'timeout' || (e.kind === 'bmc' && e.bmcCode === '503'));
}

export function nodeLabel(node: NodeTarget): string {
  return node.name ?? node.uuid;
}

export function invalidInfo(field: string, value: unknown, expected: string): OspError {
  const shown = field === 'password' ? '******' : JSON.stringify(value);
  return new OspError('NODE_INVALID', `driver_info.${field}=${shown}: expected ${expected}`, { field });
}

/** Shared checks for address/port/username that every remote driver needs. */
export function validateCommonInfo(info: DriverInfo, defaultPortHint: string): void {
  if (typeof info.address !== 'string' || info.address.trim() === '' || /\s/.test(info.address)) {
    throw invalidInfo('address', info.address, 'a host name or IP address without spaces');
  }
  if (info.port !== undefined && (!Number.isInteger(info.port) || info.port < 1 || info.port > 65535)) {
    throw invalidInfo('port', info.port, `an integer 1-65535 (${defaultPortHint})`);
  }
  if (info.username !== undefined && typeof info.username !== 'string') {
    throw invalidInfo('username', info.username, 'a string');
  }
  if (info.password !== undefined && typeof info.password !== 'string') {
    throw invalidInfo('password', info.password, 'a string');
  }
}
