import { createHash } from 'node:crypto';
import { OspError } from '../../common/errors.js';
import { RedfishConnection } from './redfish-session.js';
import { BmcSerializer, DEFAULT_RETRY, withRetry, waitForPowerState, type RetryPolicy } from './pacing.js';
import {
  BmcError, invalidInfo, nodeLabel, validateCommonInfo, POWER_ACTIONS, BOOT_DEVICES,
  type BootDeviceRequest, type BootDevice, type Capabilities, type DriverInfo, type NodeTarget,
  type PowerAction, type PowerDriver, type PowerState, type SetPowerOptions,
} from './types.js';

export interface RedfishDriverOptions {
  callTimeoutMs?: number;
  retry?: RetryPolicy;
  /** Gap between commands to one BMC; Redfish services cope with more than IPMI ones. Default 0. */
  minIntervalMs?: number;
  powerWaitTimeoutMs?: number;
  powerPollIntervalMs?: number;
  /** Attempts at a PATCH that keeps meeting 412 (someone else writes the resource). */
  etagAttempts?: number;
}

type Json = Record<string, unknown>;

const BOOT_TARGET: Record<BootDevice, string> = { pxe: 'Pxe', disk: 'Hdd', cdrom: 'Cd' };
// When a reset type is absent from AllowableValues, the alternatives in order.
const RESET_CHOICES: Record<PowerAction, string[]> = {
  on: ['On', 'ForceOn', 'PushPowerButton'],
  off: ['ForceOff', 'PushPowerButton'],
  'soft off': ['GracefulShutdown'],
  reboot: ['ForceRestart', 'PowerCycle'],
  'soft reboot': ['GracefulRestart'],
};
// Redfish says: no AllowableValues annotation means every value is allowed.
const ALL_RESETS = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'ForceOn', 'PushPowerButton', 'Nmi'];

interface SystemInfo { path: string; resetTarget: string; resetTypes: string[] }

/** redfish power driver: ComputerSystem PowerState, Reset action and Boot override. */
export class RedfishDriver implements PowerDriver {
  readonly name = 'redfish';
  private readonly conns = new Map<string, RedfishConnection>();
  private readonly systems = new Map<string, SystemInfo>();
  private readonly serializer: BmcSerializer;
  private readonly callTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly powerWaitTimeoutMs: number;
  private readonly powerPollIntervalMs: number;
  private readonly etagAttempts: number;

  constructor(opts: RedfishDriverOptions = {}) {
    this.callTimeoutMs = opts.callTimeoutMs ?? 20_000;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.powerWaitTimeoutMs = opts.powerWaitTimeoutMs ?? 60_000;
    this.powerPollIntervalMs = opts.powerPollIntervalMs ?? 1000;
    this.etagAttempts = opts.etagAttempts ?? 3;
    this.serializer = new BmcSerializer(opts.minIntervalMs ?? 0);
  }

  /** Requests sent to all BMCs so far (benchmark figure). */
  get requestCount(): number {
    let n = 0;
    for (const c of this.conns.values()) n += c.requests;
    return n;
  }

  validateInfo(info: DriverInfo): void {
    validateCommonInfo(info, 'default 443');
    if (!info.username) throw invalidInfo('username', info.username, 'the Redfish user name');
    if (info.password === undefined) throw invalidInfo('password', info.password, 'the Redfish password');
    const v = info.verify_ca;
    if (v !== undefined && typeof v !== 'boolean' && (typeof v !== 'string' || v === '')) {
      throw invalidInfo('verify_ca', v, 'true, false or a CA bundle path');
    }
    if (info.system_id !== undefined && (typeof info.system_id !== 'string' || info.system_id === '')) {
      throw invalidInfo('system_id', info.system_id, 'a ComputerSystem id or its /redfish/v1/Systems/<id> path');
    }
  }

  private key(info: DriverInfo): string {
    const pw = createHash('sha256').update(info.password ?? '').digest('hex').slice(0, 16);
    return `${info.address}:${info.port ?? 443}:${info.username}:${pw}:${String(info.verify_ca ?? true)}:${info.system_id ?? ''}`;
  }

  private conn(node: NodeTarget): RedfishConnection {
    const info = node.driverInfo;
    const k = this.key(info);
    let c = this.conns.get(k);
    if (!c) {
      c = new RedfishConnection({
        node: nodeLabel(node), address: info.address, port: info.port ?? 443, username: info.username ?? '',
        password: info.password ?? '', verifyCa: info.verify_ca ?? true, timeoutMs: this.callTimeoutMs,
      });
      this.conns.set(k, c);
    }
    return c;
  }

  /** Serialised per BMC, retried on transient failures. */
  private run<T>(node: NodeTarget, fn: (c: RedfishConnection, sys: SystemInfo) => Promise<T>): Promise<T> {
    this.validateInfo(node.driverInfo);
    const c = this.conn(node);
    return withRetry(this.retry, () => this.serializer.run(c.bmc, async () => fn(c, await this.system(node, c))));
  }

  private async system(node: NodeTarget, c: RedfishConnection): Promise<SystemInfo> {
    const k = this.key(node.driverInfo);
    const cached = this.systems.get(k);
    if (cached) return cached;
    const root = (await c.raw('GET', '/redfish/v1')).body;
    const sessions = ((root.Links as Json | undefined)?.Sessions as Json | undefined)?.['@odata.id'];
    await c.login(typeof sessions === 'string' ? sessions : undefined);
    const systemsPath = (root.Systems as Json | undefined)?.['@odata.id'];
    if (typeof systemsPath !== 'string') throw new BmcError('unsupported', nodeLabel(node), c.bmc, 'service root has no Systems collection');
    const members = (((await c.ok('GET', systemsPath)).body.Members as Json[]) ?? []).map((m) => String(m['@odata.id']).replace(/\/$/, ''));
    const want = node.driverInfo.system_id;
    let path: string | undefined;
    if (want) path = members.find((m) => m === want.replace(/\/$/, '') || m.endsWith(`/${want}`));
    else if (members.length === 1) path = members[0];
    if (!path) {
      const detail = want ? `driver_info.system_id=${JSON.stringify(want)} not found` : `${members.length} systems and no driver_info.system_id`;
      throw new OspError('NODE_INVALID', `node ${nodeLabel(node)}: BMC ${c.bmc}: ${detail}; expected one of ${members.join(', ') || '(none)'}`);
    }
    const sys = (await c.ok('GET', path)).body;
    const reset = ((sys.Actions as Json | undefined)?.['#ComputerSystem.Reset'] ?? {}) as Json;
    let resetTypes = reset['ResetType@Redfish.AllowableValues'] as string[] | undefined;
    const infoPath = reset['@Redfish.ActionInfo'];
    if (!resetTypes && typeof infoPath === 'string') {
      const params = ((await c.ok('GET', infoPath)).body.Parameters as Json[] | undefined) ?? [];
      resetTypes = params.find((p) => p.Name === 'ResetType')?.AllowableValues as string[] | undefined;
    }
    const info: SystemInfo = {
      path,
      resetTarget: typeof reset.target === 'string' ? reset.target : `${path}/Actions/ComputerSystem.Reset`,
      resetTypes: resetTypes ?? ALL_RESETS,
    };
    this.systems.set(k, info);
    return info;
  }

  async validate(node: NodeTarget): Promise<void> {
    await this.getPowerState(node);
  }

  async getPowerState(node: NodeTarget): Promise<PowerState> {
    return this.run(node, (c, sys) => this.readPower(c, sys));
  }

  private async readPower(c: RedfishConnection, sys: SystemInfo): Promise<PowerState> {
    const ps = (await c.ok('GET', sys.path)).body.PowerState;
    return ps === 'On' ? 'on' : ps === 'Off' ? 'off' : 'unknown';
  }

  private chooseReset(node: NodeTarget, c: RedfishConnection, sys: SystemInfo, action: PowerAction): string {
    const choice = RESET_CHOICES[action].find((t) => sys.resetTypes.includes(t));
    if (!choice) {
      throw new BmcError('unsupported', nodeLabel(node), c.bmc,
        `power ${action}: system allows only ResetType ${sys.resetTypes.join(', ')}`);
    }
    return choice;
  }

  async setPowerState(node: NodeTarget, action: PowerAction, opts: SetPowerOptions = {}): Promise<PowerState> {
    if (!POWER_ACTIONS.includes(action)) {
      throw new OspError('INVALID_ARGUMENT', `power action ${JSON.stringify(action)}: expected one of ${POWER_ACTIONS.join(', ')}`);
    }
    const target: PowerState = action === 'off' || action === 'soft off' ? 'off' : 'on';
    await this.run(node, async (c, sys) => {
      let effective = action;
      // A restart of a machine that is off does nothing on many BMCs: power it on instead (Ironic does the same).
      if ((action === 'reboot' || action === 'soft reboot') && (await this.readPower(c, sys)) === 'off') effective = 'on';
      const resetType = this.chooseReset(node, c, sys, effective);
      await c.ok('POST', sys.resetTarget, { ResetType: resetType });
    });
    if (opts.wait === false) return 'unknown';
    const waitMs = opts.waitTimeoutMs ?? this.powerWaitTimeoutMs;
    return waitForPowerState(() => this.getPowerState(node), target, waitMs, this.powerPollIntervalMs,
      (last) => new BmcError('timeout', nodeLabel(node), `${node.driverInfo.address}:${node.driverInfo.port ?? 443}`,
        `power ${action}: PowerState still ${last ?? 'unknown'} after ${waitMs} ms`));
  }

  async setBootDevice(node: NodeTarget, req: BootDeviceRequest): Promise<void> {
    if (!BOOT_DEVICES.includes(req.device)) {
      throw new OspError('INVALID_ARGUMENT', `boot device ${JSON.stringify(req.device)}: expected one of ${BOOT_DEVICES.join(', ')}`);
    }
    await this.run(node, async (c, sys) => {
      for (let attempt = 1; ; attempt++) {
        const r = await c.ok('GET', sys.path);
        const boot = (r.body.Boot ?? {}) as Json;
        const allowed = boot['BootSourceOverrideTarget@Redfish.AllowableValues'] as string[] | undefined;
        const target = BOOT_TARGET[req.device];
        if (allowed && !allowed.includes(target)) {
          throw new BmcError('unsupported', nodeLabel(node), c.bmc, `boot device ${req.device}: BootSourceOverrideTarget allows only ${allowed.join(', ')}`);
        }
        const patch: Json = { BootSourceOverrideTarget: target, BootSourceOverrideEnabled: req.persistent ? 'Continuous' : 'Once' };
        if (req.mode) patch.BootSourceOverrideMode = req.mode === 'uefi' ? 'UEFI' : 'Legacy';
        const etag = (r.headers.etag as string | undefined) ?? (r.body['@odata.etag'] as string | undefined);
        const res = await c.call('PATCH', sys.path, { Boot: patch }, etag ? { 'If-Match': etag } : {});
        // RFC 7232 section 4.2: 412 means our copy is stale; read again and retry, bounded.
        if (res.status === 412 && attempt < this.etagAttempts) continue;
        if (res.status >= 200 && res.status < 300) return;
        const e = res.body.error as { code?: string; message?: string } | undefined;
        throw new BmcError('bmc', nodeLabel(node), c.bmc, `PATCH ${sys.path}: HTTP ${res.status} ${e?.message ?? ''}`.trim(), e?.code ?? String(res.status));
      }
    });
  }

  async capabilities(node: NodeTarget): Promise<Capabilities> {
    return this.run(node, async (c, sys) => {
      const boot = ((await c.ok('GET', sys.path)).body.Boot ?? {}) as Json;
      const targets = boot['BootSourceOverrideTarget@Redfish.AllowableValues'] as string[] | undefined;
      const modes = boot['BootSourceOverrideMode@Redfish.AllowableValues'] as string[] | undefined;
      return {
        powerActions: POWER_ACTIONS.filter((a) => RESET_CHOICES[a].some((t) => sys.resetTypes.includes(t))),
        bootDevices: BOOT_DEVICES.filter((d) => !targets || targets.includes(BOOT_TARGET[d])),
        bootModes: modes ? (['uefi', 'bios'] as const).filter((m) => modes.includes(m === 'uefi' ? 'UEFI' : 'Legacy')) : ['uefi', 'bios'],
        persistentBoot: true,
      };
    });
  }

  async stop(): Promise<void> {
    await Promise.all([...this.conns.values()].map((c) => c.close()));
    this.conns.clear();
    this.systems.clear();
  }
}
