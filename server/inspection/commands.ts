import { randomUUID } from 'node:crypto';

import type { Extent } from '../../common/extents.js';

export type RamdiskCommandKind = 'inspect' | 'clean' | 'deploy' | 'power_off' | 'reboot';
export type CleanMode = 'metadata' | 'full';

export interface Command {
  id: string;
  kind: RamdiskCommandKind;
  cleanMode?: CleanMode;
  deploy?: DeployPayload;
}

/** What the agent writes for a deploy (RamdiskCommand.deploy). */
export interface DeployPayload {
  imageUrl: string;
  token: string;
  extents: Extent[];
  virtualSizeBytes: number;
  rawSha256: string;
  dataSha256: string;
  device: string;
  configDrive: Buffer;
}

interface Stream {
  write(c: Command): void;
  end(): void;
}

/**
 * The live command streams of ramdisk agents, one per node. A command sent
 * while the agent is between streams waits here and goes out when it
 * reconnects, so a reconnect never loses work; state lives in memory only
 * because a restarted ospd re-derives the command from the node's state.
 */
export class CommandChannel {
  private readonly streams = new Map<string, Stream>();
  private readonly pending = new Map<string, Command[]>();

  static make(kind: RamdiskCommandKind, cleanMode?: CleanMode): Command {
    return { id: randomUUID(), kind, ...(cleanMode ? { cleanMode } : {}) };
  }

  /** Registers the node's stream (replacing an older one) and flushes what waited; returns the detach function. */
  attach(nodeUuid: string, s: Stream): () => void {
    const old = this.streams.get(nodeUuid);
    if (old && old !== s) old.end();
    this.streams.set(nodeUuid, s);
    for (const c of this.pending.get(nodeUuid) ?? []) s.write(c);
    this.pending.delete(nodeUuid);
    return () => {
      if (this.streams.get(nodeUuid) === s) this.streams.delete(nodeUuid);
    };
  }

  send(nodeUuid: string, c: Command): void {
    const s = this.streams.get(nodeUuid);
    if (s) s.write(c);
    else this.pending.set(nodeUuid, [...(this.pending.get(nodeUuid) ?? []), c]);
  }

  isConnected(nodeUuid: string): boolean {
    return this.streams.has(nodeUuid);
  }

  /** Forgets the node's queued commands and ends its stream (its token is gone). */
  close(nodeUuid: string): void {
    this.pending.delete(nodeUuid);
    const s = this.streams.get(nodeUuid);
    this.streams.delete(nodeUuid);
    s?.end();
  }

  closeAll(): void {
    for (const uuid of [...this.streams.keys()]) this.close(uuid);
    this.pending.clear();
  }
}
