import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from '../harness/wait.js';

/**
 * A QEMU guest whose serial console we read. The test owns the process: stop()
 * kills it, and waitFor() is bounded in time so a hung boot fails instead of hanging.
 */
export class QemuSerialGuest {
  private child?: ChildProcess;
  private output = '';

  constructor(private readonly argv: string[]) {}

  start(): void {
    this.child = spawn('qemu-system-x86_64', this.argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (c: Buffer) => { this.output += c.toString('utf8'); });
    this.child.stderr!.on('data', (c: Buffer) => { this.output += c.toString('utf8'); });
  }

  /** Serial output without terminal escapes (systemd colours unit names, GRUB draws menus). */
  get console(): string {
    // eslint-disable-next-line no-control-regex
    return this.output.replace(/\x1b\[[0-9;?=]*[A-Za-z]/g, '');
  }

  /** Resolves with the first match, rejects with the console tail after timeoutMs or on exit. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const tail = () => `last output:\n${this.console.slice(-3000)}`;
    return waitFor(`${pattern} on the serial console`, () => {
      const m = pattern.exec(this.console);
      if (!m && this.child?.exitCode !== null) throw new Error(`serial console never showed ${pattern}: qemu exited; ${tail()}`);
      return m;
    }, { timeoutMs, intervalMs: 250, detail: tail });
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
