import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A free loopback port, so ospd can come back on the same address after a restart. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Polls fn until it returns something truthy; bounded by timeoutMs, names what it waited for. */
export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 20_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** The real dist/osp-agent running `run --config` against a temp root. */
export class AgentProcess {
  proc?: ChildProcess;
  exit?: Promise<number | null>;
  constructor(readonly bin: string, readonly root: string, readonly configFile: string, readonly logFile: string) {}

  start(): void {
    const fd = openSync(this.logFile, 'a');
    this.proc = spawn(this.bin, ['--root', this.root, 'run', '--config', this.configFile], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.exit = new Promise((resolve) => this.proc!.on('exit', (c) => resolve(c)));
  }

  log(): string {
    return readFileSync(this.logFile, 'utf8');
  }

  async stop(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc?.kill('SIGKILL'), 10_000);
      await this.exit;
      clearTimeout(t);
    }
  }
}
