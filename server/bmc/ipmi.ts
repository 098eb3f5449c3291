import type { Logger } from '../../common/logging.js';
import { silentLogger } from '../../common/logging.js';
import { OspError } from '../../common/errors.js';
import { runIpmitool, type IpmitoolResult } from './ipmitool-runner.js';
import { classifyIpmitoolFailure } from './ipmi-answers.js';
import { BmcSerializer, DEFAULT_RETRY, withRetry, waitForPowerState, type RetryPolicy } from './pacing.js';
import {
  BmcError, invalidInfo, nodeLabel, validateCommonInfo, POWER_ACTIONS, BOOT_DEVICES,
  type BootDeviceRequest, type Capabilities, type DriverInfo, type NodeTarget, type PowerAction,
  type PowerDriver, type PowerState, type SetPowerOptions,
} from './types.js';

export interface IpmiDriverOptions {
  ipmitoolPath?: string;
  /** Order in which cipher suites are tried (Ironic's cipher_suite_versions); default [17, 3]. */
  cipherSuites?: number[];
  /** Minimum gap between two commands to one BMC; default 1000 ms. */
  minIntervalMs?: number;
  /** Hard bound on one ipmitool run; default 20 000 ms. */
  callTimeoutMs?: number;
  retry?: RetryPolicy;
  /** How long to wait for the BMC to report a requested power state; default 60 000 ms. */
  powerWaitTimeoutMs?: number;
  powerPollIntervalMs?: number;
  logger?: Logger;
}

const DEFAULT_IPMI_PORT = 623;

/** Suites whose integrity/confidentiality we accept silently (RMCP+ HMAC-SHA1/AES, HMAC-SHA256/AES). */
const PREFERRED_SUITES = new Set([3, 17]);

/** ipmi power driver over `ipmitool -I lanplus` (IPMI v2.0 / RMCP+ only). */
export class IpmiDriver implements PowerDriver {
  readonly name = 'ipmi';
  private readonly ipmitoolPath: string;
  private readonly suites: number[];
  private readonly callTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly powerWaitTimeoutMs: number;
  private readonly powerPollIntervalMs: number;
  private readonly log: Logger;
  private readonly serializer: BmcSerializer;
  /** The suite that last worked, per BMC, so the fallback costs one failure only once. */
  private readonly workingSuite = new Map<string, number>();

  constructor(opts: IpmiDriverOptions = {}) {
    this.ipmitoolPath = opts.ipmitoolPath ?? 'ipmitool';
    this.suites = opts.cipherSuites ?? [17, 3];
    this.callTimeoutMs = opts.callTimeoutMs ?? 20_000;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.powerWaitTimeoutMs = opts.powerWaitTimeoutMs ?? 60_000;
    this.powerPollIntervalMs = opts.powerPollIntervalMs ?? 1000;
    this.log = opts.logger ?? silentLogger();
    this.serializer = new BmcSerializer(opts.minIntervalMs ?? 1000);
    if (this.suites.length === 0) throw new OspError('CONFIG_INVALID', 'ipmi cipherSuites=[]: expected at least one suite, e.g. [17, 3]');
    for (const s of this.suites) this.checkSuite(s, 'config ipmi.cipherSuites');
  }

  private checkSuite(suite: number, where: string): void {
    if (!Number.isInteger(suite) || suite < 0 || suite > 17) {
      throw new OspError('CONFIG_INVALID', `${where}=${suite}: expected an IPMI cipher suite id 1-17`);
    }
    // Suite 0 means no authentication, no integrity, no confidentiality (IPMI v2.0 table 22-19).
    if (suite === 0) throw new OspError('BMC_INSECURE', `${where}=0: cipher suite 0 (no authentication) is refused; use 17 or 3`);
    if (!PREFERRED_SUITES.has(suite)) this.log.warn({ suite, where }, 'IPMI cipher suite other than 3 or 17 is weak or uncommon');
  }

  /** The cipher suite that last worked for this BMC, if any. */
  rememberedSuite(info: DriverInfo): number | undefined {
    return this.workingSuite.get(this.bmcKey(info));
  }

  validateInfo(info: DriverInfo): void {
    validateCommonInfo(info, 'default 623');
    if (info.protocol_version !== undefined && info.protocol_version !== '2.0') {
      // IPMI 1.5 (`-I lan`) has no RMCP+ session integrity: refused before any packet.
      throw new OspError('BMC_INSECURE', `driver_info.protocol_version=${JSON.stringify(info.protocol_version)}: only IPMI 2.0 (lanplus) is allowed; IPMI 1.5 is refused`);
    }
    if (info.cipher_suite !== undefined) {
      if (typeof info.cipher_suite !== 'number') throw invalidInfo('cipher_suite', info.cipher_suite, 'an integer cipher suite id such as 17 or 3');
      this.checkSuite(info.cipher_suite, 'driver_info.cipher_suite');
    }
    if (!info.username) throw invalidInfo('username', info.username, 'the IPMI user name');
    if (info.password === undefined) throw invalidInfo('password', info.password, 'the IPMI password');
  }

  private bmcKey(info: DriverInfo): string {
    return `${info.address}:${info.port ?? DEFAULT_IPMI_PORT}`;
  }

  /** Runs one ipmitool command through serialisation, the cipher fallback and retries. */
  private async exec(node: NodeTarget, args: string[]): Promise<string> {
    const info = node.driverInfo;
    this.validateInfo(info);
    const key = this.bmcKey(info);
    return withRetry(this.retry, () => this.serializer.run(key, () => this.execWithSuites(node, key, args)));
  }

  private async execWithSuites(node: NodeTarget, key: string, args: string[]): Promise<string> {
    const info = node.driverInfo;
    let order: number[];
    if (info.cipher_suite !== undefined) order = [info.cipher_suite];
    else {
      const known = this.workingSuite.get(key);
      order = known !== undefined ? [known, ...this.suites.filter((s) => s !== known)] : this.suites;
    }
    const tried: { suite: number; answer: string }[] = [];
    for (const suite of order) {
      const res = await runIpmitool(this.ipmitoolPath, {
        host: info.address, port: info.port ?? DEFAULT_IPMI_PORT,
        username: info.username ?? '', password: info.password ?? '',
        cipherSuite: suite, args: ['-v', ...args], timeoutMs: this.callTimeoutMs,
      });
      if (res.exitCode === 0) {
        if (this.workingSuite.get(key) !== suite) this.log.info({ bmc: key, suite, tried }, 'IPMI cipher suite selected');
        this.workingSuite.set(key, suite);
        return res.stdout;
      }
      const failure = this.failure(node, res);
      if (failure instanceof BmcError) throw failure;
      // Any other reason the session could not be set up: a BMC that lacks a
      // suite may say so, or may answer with algorithms of its own choice.
      tried.push({ suite, answer: failure });
      if (suite === this.workingSuite.get(key)) this.log.warn({ bmc: key, suite, answer: failure }, 'remembered IPMI cipher suite failed; trying the others');
    }
    this.workingSuite.delete(key);
    const summary = tried.map((t) => `suite ${t.suite}: ${t.answer}`).join('; ');
    throw new BmcError('unsupported', nodeLabel(node), key,
      `no IPMI session with cipher suite${tried.length > 1 ? 's' : ''} ${tried.map((t) => t.suite).join(', ')} (${summary})`,
      undefined, { tried });
  }

  /** A BmcError to throw as is, or the answer of a session failure the next suite may avoid. */
  private failure(node: NodeTarget, res: IpmitoolResult): BmcError | string {
    const key = this.bmcKey(node.driverInfo);
    const label = nodeLabel(node);
    if (res.timedOut) return new BmcError('timeout', label, key, `ipmitool did not finish within ${this.callTimeoutMs} ms`);
    const f = classifyIpmitoolFailure(res.stdout, res.stderr);
    if (res.exitCode === -1) return new BmcError('bmc', label, key, `cannot run ${this.ipmitoolPath}: ${f.answer}`);
    switch (f.kind) {
      case 'session': return f.answer;
      case 'auth': return new BmcError('auth', label, key, `credentials rejected (${f.answer})`);
      case 'no-answer': return new BmcError('timeout', label, key, `no answer from the BMC (${f.answer})`);
      case 'command': {
        const cc = /rsp=0x([0-9a-f]{2})/i.exec(res.stderr + res.stdout)?.[1];
        return new BmcError('bmc', label, key, f.answer || `ipmitool exit ${res.exitCode}`, cc ? `0x${cc}` : undefined);
      }
    }
  }

  async validate(node: NodeTarget): Promise<void> {
    await this.getPowerState(node);
  }

  async getPowerState(node: NodeTarget): Promise<PowerState> {
    const out = await this.exec(node, ['power', 'status']);
    const m = /Chassis Power is (on|off)/i.exec(out);
    return m ? (m[1].toLowerCase() as PowerState) : 'unknown';
  }

  async setPowerState(node: NodeTarget, action: PowerAction, opts: SetPowerOptions = {}): Promise<PowerState> {
    if (!POWER_ACTIONS.includes(action)) {
      throw new OspError('INVALID_ARGUMENT', `power action ${JSON.stringify(action)}: expected one of ${POWER_ACTIONS.join(', ')}`);
    }
    const wait = opts.wait ?? true;
    const waitMs = opts.waitTimeoutMs ?? this.powerWaitTimeoutMs;
    const reach = async (cmd: string, target: PowerState): Promise<PowerState> => {
      await this.exec(node, ['power', cmd]);
      if (!wait) return 'unknown';
      return waitForPowerState(() => this.getPowerState(node), target, waitMs, this.powerPollIntervalMs,
        (last) => new BmcError('timeout', nodeLabel(node), this.bmcKey(node.driverInfo),
          `power ${cmd}: still ${last ?? 'unknown'} after ${waitMs} ms`));
    };
    switch (action) {
      case 'on': return reach('on', 'on');
      case 'off': return reach('off', 'off');
      case 'soft off': return reach('soft', 'off');
      // Like Ironic: off then on, so a node that was off still ends up on.
      case 'reboot': await reach('off', 'off'); return reach('on', 'on');
      case 'soft reboot': await reach('soft', 'off'); return reach('on', 'on');
    }
  }

  async setBootDevice(node: NodeTarget, req: BootDeviceRequest): Promise<void> {
    if (!BOOT_DEVICES.includes(req.device)) {
      throw new OspError('INVALID_ARGUMENT', `boot device ${JSON.stringify(req.device)}: expected one of ${BOOT_DEVICES.join(', ')}`);
    }
    const dev = req.device === 'cdrom' ? 'cdrom' : req.device;
    const options: string[] = [];
    if (req.persistent) options.push('persistent');
    if (req.mode === 'uefi') options.push('efiboot');
    await this.exec(node, ['chassis', 'bootdev', dev, ...(options.length ? [`options=${options.join(',')}`] : [])]);
  }

  async capabilities(_node: NodeTarget): Promise<Capabilities> {
    return { powerActions: [...POWER_ACTIONS], bootDevices: [...BOOT_DEVICES], bootModes: ['uefi', 'bios'], persistentBoot: true };
  }

  async stop(): Promise<void> {
    this.workingSuite.clear();
  }
}
