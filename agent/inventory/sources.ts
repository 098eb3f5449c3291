import { execFile } from 'node:child_process';
import { readFile, readdir, readlink, access } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Where the inventory reads from: files under a root (so tests can point it
 * at a fake tree) and external commands (absent tools answer null).
 */
export interface InventorySources {
  readText(path: string): Promise<string | null>;
  listDir(path: string): Promise<string[]>;
  readLink(path: string): Promise<string | null>;
  exists(path: string): Promise<boolean>;
  /** stdout, or null when the tool is missing, fails or times out. */
  run(command: string, args: string[]): Promise<string | null>;
}

export interface HostSourcesOptions {
  root?: string;
  /** Commands are skipped entirely when false (tests with a fake root). */
  allowCommands?: boolean;
  commandTimeoutMs?: number;
}

export class HostSources implements InventorySources {
  private readonly root: string;
  private readonly allowCommands: boolean;
  private readonly timeoutMs: number;

  constructor(opts: HostSourcesOptions = {}) {
    this.root = opts.root ?? '/';
    this.allowCommands = opts.allowCommands ?? this.root === '/';
    this.timeoutMs = opts.commandTimeoutMs ?? 10_000;
  }

  private p(path: string): string {
    return join(this.root, path);
  }

  async readText(path: string): Promise<string | null> {
    return readFile(this.p(path), 'utf8').then((t) => t, () => null);
  }

  async listDir(path: string): Promise<string[]> {
    return readdir(this.p(path)).then((l) => l.sort(), () => []);
  }

  async readLink(path: string): Promise<string | null> {
    return readlink(this.p(path)).then((l) => l, () => null);
  }

  async exists(path: string): Promise<boolean> {
    return access(this.p(path)).then(() => true, () => false);
  }

  run(command: string, args: string[]): Promise<string | null> {
    if (!this.allowCommands) return Promise.resolve(null);
    return new Promise((resolve) => {
      execFile(command, args, { timeout: this.timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => resolve(err ? null : stdout));
    });
  }
}
