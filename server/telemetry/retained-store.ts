import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface RetainedMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
}

/**
 * Where the broker keeps retained messages across restarts. ospd may back it
 * with the store; `FileRetainedStore` is the embedded default.
 */
export interface RetainedStore {
  load(): Promise<RetainedMessage[]>;
  /** An empty payload deletes the topic (MQTT 3.1.1 section 3.3.1.3). */
  save(msg: RetainedMessage): void;
  flush(): Promise<void>;
}

/** One JSON file, rewritten atomically (tmp + rename) at most every `writeDelayMs`. */
export class FileRetainedStore implements RetainedStore {
  private readonly messages = new Map<string, RetainedMessage>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly writeDelayMs = 200,
  ) {}

  async load(): Promise<RetainedMessage[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const rows = JSON.parse(text) as { topic: string; payloadBase64: string; qos: 0 | 1 | 2 }[];
    for (const r of rows) this.messages.set(r.topic, { topic: r.topic, payload: Buffer.from(r.payloadBase64, 'base64'), qos: r.qos });
    return [...this.messages.values()];
  }

  save(msg: RetainedMessage): void {
    if (msg.payload.length === 0) this.messages.delete(msg.topic);
    else this.messages.set(msg.topic, msg);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.write();
      }, this.writeDelayMs);
    }
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await this.write();
  }

  private write(): Promise<void> {
    const rows = [...this.messages.values()].map((m) => ({ topic: m.topic, payloadBase64: m.payload.toString('base64'), qos: m.qos }));
    this.writing = this.writing.then(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.tmp`;
      await writeFile(tmp, JSON.stringify(rows), { mode: 0o600 });
      await rename(tmp, this.path);
    });
    return this.writing;
  }
}
