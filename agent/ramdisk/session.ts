import { credentials, Metadata, status, type ServiceError, type ClientReadableStream } from '@grpc/grpc-js';
import type { Logger } from '../../common/logging.js';
import { RamdiskServiceClient, type DeployCommand, type RamdiskCommand } from '../../proto/gen/osp/v1/ramdisk.js';
import type { RamdiskBootParams } from './cmdline.js';
import type { MachineIdentity } from './identity.js';
import { fetchPinnedCa, type PinnedCa } from './pin.js';
import { MIB, wipeDisk, type WipeTarget } from './wipe.js';

export interface RamdiskAgentDeps {
  params: RamdiskBootParams;
  log: Logger;
  identity: () => Promise<MachineIdentity>;
  inventory: () => Promise<Record<string, unknown>>;
  disks: () => Promise<WipeTarget[]>;
  /** Runs `poweroff -f` / `reboot -f` (or what the operator configured); resolves when it was started. */
  power: (kind: 'power_off' | 'reboot') => Promise<void>;
  /** Writes the image and the config drive (ramdisk/deploy.ts); resolves with a one-line summary. */
  deploy: (d: DeployCommand, progress: (percent: number, message: string) => void) => Promise<string>;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  callTimeoutMs?: number;
}

type Outcome = 'powered-off' | 'stream-ended' | 'token-revoked';

/**
 * The ramdisk agent: pins ospd's CA, looks up its node, then holds the
 * command stream and runs what arrives, one command at a time. Every failure
 * to reach ospd is retried with capped exponential backoff; only a power
 * command ends it.
 */
export class RamdiskAgent {
  private client?: RamdiskServiceClient;
  private stream?: ClientReadableStream<RamdiskCommand>;
  private stopped = false;
  private failures = 0;
  private wake?: () => void;

  constructor(private readonly d: RamdiskAgentDeps) {}

  stop(): void {
    this.stopped = true;
    this.stream?.cancel();
    this.wake?.();
    this.client?.close();
  }

  private async sleep(): Promise<void> {
    const min = this.d.minBackoffMs ?? 500;
    const max = this.d.maxBackoffMs ?? 30_000;
    const base = Math.min(max, min * 2 ** Math.min(20, this.failures++));
    const ms = base / 2 + Math.random() * (base / 2);
    await new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      this.wake = () => { clearTimeout(t); r(); };
    });
  }

  private deadline(): Date {
    return new Date(Date.now() + (this.d.callTimeoutMs ?? 30_000));
  }

  /** Runs until a power command was executed (0) or stop() (1). */
  async run(): Promise<number> {
    const { log, params } = this.d;
    let ca: PinnedCa | undefined;
    while (!this.stopped && !ca) {
      try {
        ca = await fetchPinnedCa(params.server, params.caSha256, this.d.callTimeoutMs ?? 30_000);
        log.info({ server: params.server }, 'server certificate matches the pinned CA');
      } catch (e) {
        log.warn({ server: params.server, err: (e as Error).message }, 'cannot reach a trusted ospd; retrying');
        await this.sleep();
      }
    }
    if (!ca) return 1;
    this.client = new RamdiskServiceClient(params.server, credentials.createSsl(Buffer.from(ca.caPem)), {
      ...(ca.serverName ? { 'grpc.ssl_target_name_override': ca.serverName } : {}),
      'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.keepalive_permit_without_calls': 1,
    });
    while (!this.stopped) {
      const session = await this.lookup();
      if (!session) continue;
      this.failures = 0;
      for (;;) {
        const outcome = await this.holdStream(session);
        if (outcome === 'powered-off') {
          this.client.close();
          return 0;
        }
        if (outcome === 'token-revoked' || this.stopped) break;
        await this.sleep();
      }
    }
    this.client.close();
    return 1;
  }

  private async lookup(): Promise<{ node: string; token: string } | undefined> {
    const id = await this.d.identity();
    const res = await new Promise<{ nodeName: string; token: string; message: string } | Error>((resolve) => {
      this.client!.lookup({ macs: id.macs, bmcAddress: id.bmcAddress, serial: id.serial }, new Metadata(), { deadline: this.deadline() },
        (err, r) => resolve(err ? err : r!));
    });
    if (res instanceof Error) {
      this.d.log.warn({ err: res.message }, 'lookup failed; retrying');
    } else if (!res.token) {
      this.d.log.info({ macs: id.macs, reason: res.message }, 'ospd has nothing for this machine yet; retrying');
    } else {
      this.d.log.info({ node: res.nodeName }, 'looked up: this machine is node ' + res.nodeName);
      return { node: res.nodeName, token: res.token };
    }
    await this.sleep();
    return undefined;
  }

  private md(s: { node: string; token: string }): Metadata {
    const md = new Metadata();
    md.set('authorization', `Bearer ${s.token}`);
    md.set('osp-node', s.node);
    return md;
  }

  private holdStream(s: { node: string; token: string }): Promise<Outcome> {
    return new Promise((resolve) => {
      const stream = this.client!.commands({}, this.md(s));
      this.stream = stream;
      let chain: Promise<Outcome | undefined> = Promise.resolve(undefined);
      let finished = false;
      const finish = (o: Outcome) => {
        if (finished) return;
        finished = true;
        resolve(o);
      };
      stream.on('metadata', () => {
        this.failures = 0;
        this.d.log.info({ node: s.node }, 'command stream open');
      });
      stream.on('data', (c: RamdiskCommand) => {
        chain = chain.then(async (prev) => prev ?? this.execute(s, c));
        void chain.then((o) => { if (o) { stream.cancel(); finish(o); } });
      });
      stream.on('error', (e: ServiceError) => {
        if (e.code === status.CANCELLED && finished) return;
        const revoked = e.code === status.UNAUTHENTICATED;
        this.d.log.warn({ code: e.code, err: e.details }, revoked ? 'token no longer accepted' : 'command stream failed');
        void chain.then((o) => finish(o ?? (revoked ? 'token-revoked' : 'stream-ended')));
      });
      stream.on('end', () => void chain.then((o) => finish(o ?? 'stream-ended')));
    });
  }

  private report(s: { node: string; token: string }, commandId: string, st: string, message: string, percent = 0): Promise<void> {
    return new Promise((resolve) => {
      this.client!.reportCommandResult({ commandId, status: st, message, percent }, this.md(s), { deadline: this.deadline() }, (err) => {
        if (err) this.d.log.warn({ command: commandId, err: err.details }, 'could not report the command result');
        resolve();
      });
    });
  }

  private async execute(s: { node: string; token: string }, c: RamdiskCommand): Promise<Outcome | undefined> {
    const log = this.d.log.child({ command: c.id, kind: c.kind });
    log.info('command received');
    try {
      switch (c.kind) {
        case 'inspect': {
          const inv = await this.d.inventory();
          await new Promise<void>((resolve, reject) => {
            this.client!.reportInventory({ commandId: c.id, inventoryJson: JSON.stringify(inv) }, this.md(s), { deadline: this.deadline() },
              (err) => (err ? reject(new Error(`ReportInventory: ${err.details}`)) : resolve()));
          });
          log.info('inventory sent');
          return undefined;
        }
        case 'clean': {
          const mode = c.cleanMode === 'full' ? 'full' : 'metadata';
          const disks = await this.d.disks();
          let wiped = 0;
          for (const [i, disk] of disks.entries()) {
            let lastPct = -1;
            await wipeDisk(disk, mode, (done, total) => {
              const pct = Math.floor(((i + done / total) / disks.length) * 100);
              if (pct >= lastPct + 10) {
                lastPct = pct;
                void this.report(s, c.id, 'running', `wiping ${disk.path} (${mode})`, pct);
              }
            });
            wiped++;
            log.info({ disk: disk.path, mode, sizeMib: Math.round(disk.sizeBytes / MIB) }, 'disk wiped');
          }
          await this.report(s, c.id, 'succeeded', `${mode} erase of ${wiped} disk(s): ${disks.map((d) => d.path).join(', ') || 'none found'}`, 100);
          return undefined;
        }
        case 'deploy': {
          if (!c.deploy) throw new Error('deploy: missing: expected the deploy command\'s image, device and config drive');
          const summary = await this.d.deploy(c.deploy, (pct, message) => void this.report(s, c.id, 'running', message, pct));
          await this.report(s, c.id, 'succeeded', summary, 100);
          return undefined;
        }
        case 'power_off':
        case 'reboot':
          log.info('running the power command');
          await this.d.power(c.kind);
          return 'powered-off';
        default:
          await this.report(s, c.id, 'failed', `unknown command kind ${JSON.stringify(c.kind)}: expected inspect, clean, deploy, power_off or reboot`);
          return undefined;
      }
    } catch (e) {
      log.error({ err: (e as Error).message }, 'command failed');
      await this.report(s, c.id, 'failed', (e as Error).message);
      return undefined;
    }
  }
}
