import { OspError } from '../../common/errors.js';
import type { NodeTarget, PowerDriver } from './types.js';

/** Drivers keyed by the node's `driver` field; the composition root registers them. */
export class DriverRegistry {
  private readonly drivers = new Map<string, PowerDriver>();

  register(driver: PowerDriver): void {
    if (this.drivers.has(driver.name)) throw new OspError('ALREADY_EXISTS', `power driver ${driver.name} registered twice`);
    this.drivers.set(driver.name, driver);
  }

  get(name: string): PowerDriver {
    const d = this.drivers.get(name);
    if (!d) {
      throw new OspError('NODE_INVALID', `driver=${JSON.stringify(name)}: expected one of ${[...this.drivers.keys()].join(', ')}`);
    }
    return d;
  }

  names(): string[] { return [...this.drivers.keys()]; }

  /** Convenience for callers that hold a node with its driver name. */
  forNode(node: NodeTarget & { driver: string }): PowerDriver { return this.get(node.driver); }

  async stop(): Promise<void> {
    await Promise.all([...this.drivers.values()].map((d) => d.stop()));
  }
}
