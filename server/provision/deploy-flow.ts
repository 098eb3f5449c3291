import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { OspError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import { writeFileAtomic } from '../../common/files.js';
import { generateToken, hashToken } from '../security/tokens.js';
import type { Database } from '../store/db.js';
import { nodeStore } from '../store/nodes.js';
import { telemetryStore } from '../store/telemetry.js';
import { imageStore } from '../store/images.js';
import { nextState } from '../nodes/states.js';
import type { NodeRecord } from '../nodes/model.js';
import type { NodeRegistry } from '../nodes/registry.js';
import type { InspectionFlow, PowerPort } from '../inspection/flow.js';
import { CommandChannel, type Command } from '../inspection/commands.js';
import { chooseRootDisk, HintError, MIN_ROOT_DISK_BYTES, type InventoryDisk } from '../inspection/root-device.js';
import { formatBytes, type ImageRecord, type ImageStore } from '../images/image-store.js';
import type { DeployTokens } from '../images/deploy-tokens.js';
import type { NodeEventSink } from '../nodes/live-events.js';
import { buildConfigDrive } from './config-drive.js';
import { DeployBootWatch } from './boot-watch.js';
import type { DriveDhcp } from './config-drive-network.js';

export interface DeployOptions {
  hostname?: string;
  userData?: Buffer;
  sshKeys?: string[];
  metadata?: Record<string, string>;
}

/** What a deploy needs after the machine calls back, kept on disk so a restarted ospd can still answer the agent. */
interface PendingDeploy {
  image: string;
  device: string;
  hostname: string;
  userDataB64?: string;
  sshKeys: string[];
  metadata?: Record<string, string>;
  /** sha256 of the deployed system's node token, installed when the write succeeds. */
  agentTokenHash?: string;
  /** The command that carries that token's config drive: only its result counts. */
  commandId?: string;
}

export interface DeployFlowDeps {
  db: Database;
  registry: NodeRegistry;
  flow: InspectionFlow;
  power: PowerPort;
  images: ImageStore;
  deployTokens: DeployTokens;
  /** NodeConfigs: the deployed system's token replaces the ramdisk's on success. */
  agentTokens: {
    adoptTokenHash(id: string, tokenHash: string, actor: string): Promise<void>;
    revokeToken(id: string, actor: string): Promise<boolean>;
    onAuthenticated(fn: (nodeUuid: string) => void): () => void;
  };
  /** agent.yaml for the deployed system (server, CA, node, token). */
  agentYaml: (nodeName: string, token: string) => string;
  /** Base of the image URL machines reach (`http://host:port`); '' when ospd has no HTTP listener. */
  httpBaseUrl: () => string;
  dhcp: () => DriveDhcp;
  dataDir: string;
  deployTokenTtlMs: number;
  /** deploy-boot-timeout-ms: how long the deployed system's agent may take to connect after the reboot. */
  deployBootTimeoutMs: number;
  events?: NodeEventSink;
  log: Logger;
}

export const DEPLOY_EVENT = 'deploy';

function describeDisks(disks: InventoryDisk[]): string {
  return disks.length
    ? disks.map((d) => `${d.name ?? '?'} (${typeof d.size === 'number' ? formatBytes(d.size) : 'size unknown'}, serial ${d.serial || 'none'})`).join(', ')
    : 'none';
}

/**
 * Deploy: `available` → `deploying` → (PXE, power on) → `wait call-back` →
 * the ramdisk writes the image and the config drive → boot from disk →
 * `active`. The wait (deadline, abort, restart) is InspectionFlow's; this
 * class supplies the command and handles the result.
 */
export class DeployFlow {
  private readonly dir: string;
  /** Started and stopped by ospd's provision part. */
  readonly bootWatch: DeployBootWatch;

  constructor(private readonly d: DeployFlowDeps) {
    this.dir = path.join(d.dataDir, 'deploys');
    this.bootWatch = new DeployBootWatch({
      db: d.db, registry: d.registry, dir: this.dir, timeoutMs: d.deployBootTimeoutMs, agentAuth: d.agentTokens, events: d.events, log: d.log,
    });
    d.flow.handleDeploys({
      commandFor: (n) => this.commandFor(n),
      result: (n, r) => this.result(n, r),
      ended: (n) => this.ended(n.uuid),
    });
  }

  private file(uuid: string): string {
    return path.join(this.dir, `${uuid}.json`);
  }

  private async pending(uuid: string): Promise<PendingDeploy | undefined> {
    try {
      return JSON.parse(await readFile(this.file(uuid), 'utf8')) as PendingDeploy;
    } catch {
      return undefined;
    }
  }

  private async save(uuid: string, p: PendingDeploy): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Holds user data the operator may consider private: readable by ospd only.
    await writeFileAtomic(this.file(uuid), JSON.stringify(p), 0o600);
  }

  /** The disk the image goes on, from the stored inventory and the node's root device hints. */
  async chooseDevice(n: NodeRecord, img: ImageRecord): Promise<string> {
    const facts = await telemetryStore.facts(this.d.db, n.uuid);
    const inv = facts ? (JSON.parse(facts.facts) as { disks?: unknown }) : {};
    const disks = (Array.isArray(inv.disks) ? inv.disks : []) as InventoryDisk[];
    let disk: InventoryDisk | null;
    try {
      disk = chooseRootDisk(disks, n.rootDevice);
    } catch (e) {
      if (e instanceof HintError) throw new OspError('INVALID_ARGUMENT', `root_device: ${e.message}`, { field: 'root_device', value: n.rootDevice });
      throw e;
    }
    if (!disk || !disk.name) {
      const want = Object.keys(n.rootDevice).length ? `the root device hints ${JSON.stringify(n.rootDevice)}` : `a disk of at least ${formatBytes(MIN_ROOT_DISK_BYTES)}`;
      throw new OspError('DEPLOY_TARGET_INVALID', `node ${n.name}: no disk matches ${want}; the inventory lists: ${describeDisks(disks)}`, {
        field: 'root_device', value: n.rootDevice, expected: want, disks: disks.map((x) => ({ name: x.name, size: x.size, serial: x.serial })),
      });
    }
    if (typeof disk.size === 'number' && img.virtualSizeBytes > disk.size) {
      throw new OspError('DEPLOY_TARGET_TOO_SMALL', `image ${img.name}: ${formatBytes(img.virtualSizeBytes)} does not fit on ${disk.name} of node ${n.name} (${formatBytes(disk.size)})`, {
        field: 'image', value: img.name, expected: `at most ${disk.size} bytes`,
      });
    }
    return disk.name;
  }

  /** Checks, records the image in use, and starts the boot into the ramdisk; the node is `deploying` when this returns. */
  async deploy(id: string, image: string, o: DeployOptions, actor: string): Promise<NodeRecord> {
    return this.start(await this.d.registry.get(id), 'deploy', image, o, actor);
  }

  /** The same (or another) image written again with a new config drive and a new node token. */
  async rebuild(id: string, image: string | undefined, o: DeployOptions, actor: string): Promise<NodeRecord> {
    const n = await this.d.registry.get(id);
    const name = image || (await imageStore.nodeImage(this.d.db, n.uuid));
    if (!name) throw new OspError('INVALID_ARGUMENT', `image: "": node ${n.name} has no image recorded: expected --image NAME`, { field: 'image', value: '', expected: 'an image name' });
    return this.start(n, 'rebuild', name, o, actor);
  }

  /**
   * active (or deploy failed) → deleting → cleaning → clean wait → available:
   * the deployed system's token is revoked, the machine powered off, then
   * cleaned through the ramdisk as `provide` does.
   */
  async undeploy(id: string, actor: string): Promise<NodeRecord> {
    const n = await this.d.flow.transition((await this.d.registry.get(id)).uuid, 'delete', actor);
    await this.bootWatch.cancel(n.uuid);
    void this.d.flow.track(this.teardown(n, actor));
    return n;
  }

  private async teardown(n: NodeRecord, actor: string): Promise<void> {
    try {
      await this.d.deployTokens.revoke(n.uuid);
      await this.d.agentTokens.revokeToken(n.uuid, actor);
      await this.d.power.setPower(n.uuid, 'off', true, actor);
      await this.d.images.setNodeImage(n.uuid, null);
    } catch (e) {
      await this.d.flow.transition(n.uuid, 'fail', actor, `undeploy failed: ${(e as Error).message}`).catch((err: Error) => this.d.log.warn({ node: n.name, err: err.message }, 'could not record failure'));
      return;
    }
    const cleaning = await this.d.flow.transition(n.uuid, 'done', actor);
    await this.d.flow.bootIntoRamdisk(cleaning, 'clean wait', actor);
  }

  private async start(n: NodeRecord, t: 'deploy' | 'rebuild', image: string, o: DeployOptions, actor: string): Promise<NodeRecord> {
    nextState(n.name, n.provisionState, t);
    const img = await this.d.images.get(image);
    const device = await this.chooseDevice(n, img);
    if (!this.d.httpBaseUrl()) throw new OspError('DEPLOY_TARGET_INVALID', 'http-listen: off: expected ospd\'s HTTP listener on (machines fetch the image from it)', { field: 'http-listen', value: 'off', expected: 'an address' });
    const pending: PendingDeploy = {
      image, device, hostname: o.hostname || n.name, userDataB64: o.userData?.toString('base64'), sshKeys: o.sshKeys ?? [], metadata: o.metadata,
    };
    // Bad host names, keys or metadata are refused now, not after a boot.
    await this.buildDrive(n, pending, 'validation-only');
    await this.save(n.uuid, pending);
    await this.d.images.setNodeImage(n.uuid, image);
    const after = await this.d.flow.transition(n.uuid, t, actor);
    await this.bootWatch.cancel(n.uuid);
    await nodeStore.appendEvent(this.d.db, { nodeUuid: n.uuid, type: DEPLOY_EVENT, actor, message: `deploying image ${image} to ${device}`, data: { image, device } });
    void this.d.flow.track(this.d.flow.bootIntoRamdisk(after, 'wait call-back', actor));
    return after;
  }

  private buildDrive(n: NodeRecord, p: PendingDeploy, token: string): Promise<Buffer> {
    return buildConfigDrive({
      node: n, hostname: p.hostname, sshKeys: p.sshKeys, userData: p.userDataB64 ? Buffer.from(p.userDataB64, 'base64') : undefined,
      metadata: p.metadata, dhcp: this.d.dhcp(), agentYaml: this.d.agentYaml(n.name, token), workDir: this.d.dataDir,
    });
  }

  /** When the ramdisk's stream opens in `wait call-back`: fresh tokens, the config drive, the write command. */
  private async commandFor(n: NodeRecord): Promise<Command | undefined> {
    const p = await this.pending(n.uuid);
    if (!p) {
      await this.fail(n, 'server', 'ospd restarted mid-operation: the deploy request is gone');
      return undefined;
    }
    const img = await this.d.images.get(p.image);
    // Issued now rather than at deploy time: only the hash is kept, and a restart reaches this point again.
    const agentToken = generateToken('agent');
    const configDrive = await this.buildDrive(n, p, agentToken);
    const command = CommandChannel.make('deploy');
    await this.save(n.uuid, { ...p, agentTokenHash: hashToken(agentToken), commandId: command.id });
    const token = await this.d.deployTokens.issue(p.image, n.uuid, this.d.deployTokenTtlMs);
    return {
      ...command,
      deploy: {
        imageUrl: `${this.d.httpBaseUrl()}/images/${img.name}/raw`, token, extents: img.extents, virtualSizeBytes: img.virtualSizeBytes,
        rawSha256: img.rawSha256, dataSha256: img.dataSha256, device: p.device, configDrive,
      },
    };
  }

  private async result(n: NodeRecord, r: { commandId: string; status: 'succeeded' | 'failed'; message: string }): Promise<void> {
    const p = await this.pending(n.uuid);
    // An agent that reconnected mid-write got a newer command (new tokens, new drive); the older one's end says nothing.
    if (p?.commandId && p.commandId !== r.commandId) {
      this.d.log.warn({ node: n.name, command: r.commandId, current: p.commandId, status: r.status }, 'ignoring the result of a superseded deploy command');
      return;
    }
    if (r.status === 'failed') return this.fail(n, 'agent', `deploy failed in the ramdisk: ${r.message}`);
    await this.d.deployTokens.revoke(n.uuid);
    if (!p?.agentTokenHash) return this.fail(n, 'server', 'ospd restarted mid-operation: the deployed system has no token');
    try {
      // The ramdisk's token goes with this: the new system's replaces it.
      await this.d.agentTokens.adoptTokenHash(n.uuid, p.agentTokenHash, 'server');
      this.d.flow.closeRamdisk(n.uuid);
      await this.d.power.setBootDevice(n.uuid, { device: 'disk', persistent: true }, 'server');
      await this.d.power.setPower(n.uuid, 'reboot', true, 'server');
    } catch (e) {
      return this.fail(n, 'server', `after the image was written: ${(e as Error).message}`);
    }
    await rm(this.file(n.uuid), { force: true });
    await this.d.flow.transition(n.uuid, 'done', 'server', undefined, undefined, await this.bootWatch.watch(n.uuid));
    this.d.log.info({ node: n.name, image: p.image }, 'deployed');
  }

  private async ended(uuid: string): Promise<void> {
    await this.d.deployTokens.revoke(uuid);
    await rm(this.file(uuid), { force: true });
  }

  /** deploy failed, powered off; finish() calls ended() for the tokens and the pending file. */
  private async fail(n: NodeRecord, actor: string, message: string): Promise<void> {
    const failed = await this.d.flow.transition(n.uuid, 'fail', actor, message);
    await this.d.flow.finish(failed, 'server', true);
  }
}
