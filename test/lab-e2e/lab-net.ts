/**
 * The lab's provisioning network: one private namespace holding a bridge
 * (ospd's provisioning interface, 10.213.x.1), the BMC addresses (ipmi_sim
 * listens on them) and one tap per machine. Nothing is joined to the host
 * namespace, so no lab traffic can leave it; destroy() removes it all and the
 * test calls it from afterAll, which also runs after failures.
 */
import { randomBytes } from 'node:crypto';
import { sh } from '../pxe/netns.js';

export class LabNet {
  readonly id = randomBytes(3).toString('hex');
  readonly ns = `osplab-${this.id}`;
  readonly bridge = `olb${this.id}`;
  readonly prefix = `10.213.${16 + (randomBytes(1)[0] % 200)}`;
  readonly serverIp = `${this.prefix}.1`;
  private readonly taps: string[] = [];
  private created = false;

  start(): void {
    const ip = (...a: string[]) => sh('ip', a);
    ip('netns', 'add', this.ns);
    this.created = true;
    ip('-n', this.ns, 'link', 'set', 'lo', 'up');
    ip('-n', this.ns, 'link', 'add', this.bridge, 'type', 'bridge');
    // No STP forwarding delay: a machine's first DHCP packets must not be eaten by port learning.
    ip('-n', this.ns, 'link', 'set', this.bridge, 'type', 'bridge', 'forward_delay', '0');
    ip('-n', this.ns, 'addr', 'add', `${this.serverIp}/24`, 'dev', this.bridge);
    ip('-n', this.ns, 'link', 'set', this.bridge, 'up');
  }

  /** One more address on the bridge, e.g. a BMC's (BMCs share the provisioning LAN here). */
  addAddress(hostPart: number): string {
    const addr = `${this.prefix}.${hostPart}`;
    sh('ip', ['-n', this.ns, 'addr', 'add', `${addr}/24`, 'dev', this.bridge]);
    return addr;
  }

  /** A tap plugged into the bridge, for one QEMU NIC. */
  addTap(index: number): string {
    const tap = `olt${this.id}${index}`;
    sh('ip', ['-n', this.ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    this.taps.push(tap);
    this.plug(tap);
    return tap;
  }

  /** The cable back in: the tap joins the bridge. */
  plug(tap: string): void {
    sh('ip', ['-n', this.ns, 'link', 'set', tap, 'master', this.bridge, 'up']);
  }

  /**
   * The cable pulled out: the tap goes down, so the kernel drops every frame
   * QEMU writes. Only leaving the bridge is not enough: ospd's DHCP socket
   * (0.0.0.0:67, no SO_BINDTODEVICE in Node) still hears broadcasts from any
   * link in its namespace, as server/pxe/dhcp/server.ts documents.
   */
  unplug(tap: string): void {
    sh('ip', ['-n', this.ns, 'link', 'set', tap, 'nomaster']);
    sh('ip', ['-n', this.ns, 'link', 'set', tap, 'down']);
  }

  /** Command prefix that runs a program inside the lab namespace. */
  get wrap(): string[] {
    return ['ip', 'netns', 'exec', this.ns];
  }

  destroy(): void {
    if (!this.created) return;
    // Taps are deleted with the namespace; the namespace goes last.
    try { sh('ip', ['netns', 'del', this.ns]); } catch { /* already gone */ }
    this.created = false;
  }
}
