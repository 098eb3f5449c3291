import { sleep } from './pacing.js';
import {
  BmcError, nodeLabel, POWER_ACTIONS, BOOT_DEVICES, type BootDeviceRequest, type Capabilities,
  type DriverInfo, type NodeTarget, type PowerAction, type PowerDriver, type PowerState,
} from './types.js';

export interface FakeBmcBehaviour {
  delayMs?: number;
  /** When set, every call fails with this kind (e.g. 'unreachable'). */
  failWith?: 'auth' | 'unreachable' | 'timeout' | 'bmc';
}

/**
 * The `fake` driver: in-memory power state for simulation and tests. It is a
 * stand-in for hardware by design (Ironic has the same), not a test double
 * for a protocol peer.
 */
export class FakeDriver implements PowerDriver {
  readonly name = 'fake';
  private readonly power = new Map<string, PowerState>();
  private readonly boot = new Map<string, BootDeviceRequest>();
  private readonly behaviour = new Map<string, FakeBmcBehaviour>();
  calls = 0;

  constructor(private readonly defaults: FakeBmcBehaviour = {}) {}

  /** Simulation control: change one fake BMC's delay or failure mode. */
  setBehaviour(address: string, b: FakeBmcBehaviour): void { this.behaviour.set(address, b); }
  /** Simulation control: flip the power as if someone pressed the button. */
  setOutOfBand(address: string, state: PowerState): void { this.power.set(address, state); }
  bootOf(address: string): BootDeviceRequest | undefined { return this.boot.get(address); }

  validateInfo(_info: DriverInfo): void {}

  private async act(node: NodeTarget): Promise<string> {
    const addr = node.driverInfo.address;
    const b = { ...this.defaults, ...this.behaviour.get(addr) };
    this.calls++;
    if (b.delayMs) await sleep(b.delayMs);
    if (b.failWith) throw new BmcError(b.failWith, nodeLabel(node), addr, `fake BMC configured to fail (${b.failWith})`);
    return addr;
  }

  async validate(node: NodeTarget): Promise<void> { await this.act(node); }

  async getPowerState(node: NodeTarget): Promise<PowerState> {
    return this.power.get(await this.act(node)) ?? 'off';
  }

  async setPowerState(node: NodeTarget, action: PowerAction): Promise<PowerState> {
    const addr = await this.act(node);
    const state: PowerState = action === 'off' || action === 'soft off' ? 'off' : 'on';
    this.power.set(addr, state);
    return state;
  }

  async setBootDevice(node: NodeTarget, req: BootDeviceRequest): Promise<void> {
    this.boot.set(await this.act(node), { ...req });
  }

  async capabilities(_node: NodeTarget): Promise<Capabilities> {
    return { powerActions: [...POWER_ACTIONS], bootDevices: [...BOOT_DEVICES], bootModes: ['uefi', 'bios'], persistentBoot: true };
  }

  async stop(): Promise<void> {}
}
