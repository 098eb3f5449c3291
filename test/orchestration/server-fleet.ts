/**
 * The simulated machines behind OS::Osp::Server nodes, shared by the server
 * resource and overcloud e2e tests: a FakeMachine ramdisk (the real
 * osp-agent binary) whenever a node waits for its ramdisk, and once a node
 * is active its deployed system: the real osp-agent run from the
 * osp-agent.yaml on the config drive written to the machine's disk, on its
 * own --root.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { telemetryStore } from '../../server/store/telemetry.js';
import type { NodeRecord } from '../../server/nodes/model.js';
import { AgentProcess } from '../harness/agent.js';
import { AGENT, FakeMachine } from '../inspection-flow/machine.js';
import { DISK_BYTES, type DeployScene } from '../provision/deploy-setup.js';
import { driveFile } from '../provision/deployed-disk.js';

/**
 * The machines behind the nodes: a fresh ramdisk machine whenever a node
 * enters a ramdisk wait, the deployed system's agent once it is active,
 * everything of a node stopped when it is undeployed.
 */
export class Fleet {
  readonly ramdisks = new Map<string, FakeMachine>();
  readonly agents = new Map<string, AgentProcess>();
  readonly errors: string[] = [];
  private readonly unobserve: () => void;
  private work: Promise<unknown> = Promise.resolve();

  constructor(private readonly sc: DeployScene, private readonly dir: string, private readonly withAgents = true) {
    this.unobserve = sc.s.bmc.states.observe((n, c) => {
      // One at a time: a node's reboot into its disk and its next ramdisk boot must not overlap.
      this.work = this.work.then(() => this.on(n, c.to)).catch((e: Error) => this.errors.push(`${n.name}: ${e.message}`));
    });
  }

  private async on(n: NodeRecord, to: string): Promise<void> {
    if (to === 'wait call-back' || to === 'clean wait') {
      await this.ramdisks.get(n.name)?.halt();
      const m = new FakeMachine({ macs: n.ports, diskBytes: DISK_BYTES });
      m.bootParams(`127.0.0.1:${this.sc.s.port}`, this.sc.s.caSha256);
      this.ramdisks.set(n.name, m);
      m.boot();
    } else if (to === 'active') {
      const m = this.ramdisks.get(n.name)!;
      const cfg = path.join(this.dir, `${n.name}.agent.yaml`);
      writeFileSync(cfg, driveFile(path.join(m.root, 'dev', 'vda'), 'osp-agent.yaml'), { mode: 0o600 });
      // It rebooted into its disk: the ramdisk is gone (a live one would look up again in the next wait).
      await m.halt();
      this.ramdisks.delete(n.name);
      const root = path.join(this.dir, `${n.name}-root`);
      mkdirSync(root, { recursive: true });
      const agent = new AgentProcess(AGENT, root, cfg, path.join(this.dir, `${n.name}.agent.log`));
      this.agents.set(n.name, agent);
      if (this.withAgents) agent.start();
    } else if (to === 'deleting') {
      await this.agents.get(n.name)?.stop();
      this.agents.delete(n.name);
    }
  }

  async stop(): Promise<void> {
    this.unobserve();
    await this.work.catch(() => undefined);
    for (const a of this.agents.values()) await a.stop();
    for (const m of this.ramdisks.values()) await m.halt();
  }

  detail(): string {
    return [...this.errors, ...[...this.ramdisks].map(([k, m]) => `${k} ramdisk: ${m.stderr.slice(-800)}`),
      ...[...this.agents].filter(([, a]) => a.proc).map(([k, a]) => `${k} agent: ${a.log().slice(-800)}`)].join('\n');
  }
}

export async function addNode(sc: DeployScene, name: string, mac: string, capabilities: Record<string, string>): Promise<string> {
  const { s } = sc;
  const n = await s.registry.create({ name, ports: [mac], driver: 'fake', driverInfo: { address: `fake-${name}` }, properties: {}, capabilities, rootDevice: { name: '/dev/vda' } }, 'test');
  await s.bmc.power.manage(n.uuid, true, 'test');
  for (const t of ['provide', 'wait', 'done'] as const) await s.bmc.states.apply(n.uuid, t, 'test', {});
  await telemetryStore.putFacts(s.db, n.uuid, JSON.stringify({ disks: [{ name: '/dev/vda', size: DISK_BYTES, serial: `disk-${name}` }] }), new Date().toISOString());
  return n.uuid;
}

