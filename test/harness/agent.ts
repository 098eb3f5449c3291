import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

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
