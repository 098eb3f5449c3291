import { appendFile, readFile, rm, stat } from 'node:fs/promises';

export interface SpoolOptions {
  /** Messages kept in memory before spilling to the file. */
  memoryMessages: number;
  /** Spill file; without it, messages beyond memory are dropped. */
  filePath?: string;
  fileMaxBytes: number;
}

/**
 * A FIFO of pending messages while the broker is unreachable: memory first,
 * then a size-capped append-only file. Once full, new messages are dropped
 * and counted (the oldest are the ones already waiting in order).
 */
export class MessageSpool {
  private memory: string[] = [];
  private fileBytes = 0;
  private fileMessages = 0;
  dropped = 0;
  /** File appends and drains must not interleave, or a line could be lost between read and delete. */
  private lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: SpoolOptions) {}

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  get length(): number {
    return this.memory.length + this.fileMessages;
  }

  /** Discards a spill file left by an earlier run (its order relative to the new run is unknown). */
  async reset(): Promise<void> {
    this.memory = [];
    this.fileBytes = 0;
    this.fileMessages = 0;
    if (this.opts.filePath) await rm(this.opts.filePath, { force: true });
  }

  push(message: string): Promise<void> {
    return this.locked(() => this.pushNow(message));
  }

  drain(): Promise<string[]> {
    return this.locked(() => this.drainNow());
  }

  private async pushNow(message: string): Promise<void> {
    // Once anything is in the file, later messages must go there too to keep order.
    if (this.fileMessages === 0 && this.memory.length < this.opts.memoryMessages) {
      this.memory.push(message);
      return;
    }
    const line = `${JSON.stringify(message)}\n`;
    const bytes = Buffer.byteLength(line);
    if (!this.opts.filePath || this.fileBytes + bytes > this.opts.fileMaxBytes) {
      this.dropped++;
      return;
    }
    await appendFile(this.opts.filePath, line, { mode: 0o600 });
    this.fileBytes += bytes;
    this.fileMessages++;
  }

  /** Removes and returns everything, oldest first. */
  private async drainNow(): Promise<string[]> {
    const out = this.memory;
    this.memory = [];
    if (this.fileMessages > 0 && this.opts.filePath) {
      const text = await readFile(this.opts.filePath, 'utf8');
      for (const line of text.split('\n')) if (line) out.push(JSON.parse(line) as string);
      await rm(this.opts.filePath, { force: true });
      this.fileBytes = 0;
      this.fileMessages = 0;
    }
    return out;
  }

  async fileSizeBytes(): Promise<number> {
    if (!this.opts.filePath) return 0;
    return stat(this.opts.filePath).then((s) => s.size, () => 0);
  }
}
