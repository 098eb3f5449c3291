import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeUdpPort } from './ipmi-sim.js';

const WRAPPER = fileURLToPath(new URL('./fakebmc.py', import.meta.url));
// Debian's interpreter: the PATH python3 may be a pyenv shim without python3-pyghmi.
const PYTHON = '/usr/bin/python3';
const START_TIMEOUT_MS = 5000;

/**
 * Runs pyghmi's FakeBmc (Debian python3-pyghmi), a second IPMI implementation
 * beside ipmi_sim. It only does cipher suite 3 and, asked for another, answers
 * the open-session request with its own algorithms instead of refusing.
 */
export class FakeBmcInstance {
  readonly dir = mkdtempSync(join(tmpdir(), 'osp-fakebmc-'));
  port = 0;
  private proc?: ChildProcess;
  private output = '';

  constructor(readonly username: string, readonly password: string) {}

  /** port: reuse a port (another peer's, after it stopped) to change the BMC behind one address. */
  async start(port?: number): Promise<void> {
    this.port = port ?? await freeUdpPort();
    const proc = spawn(PYTHON, [WRAPPER, this.dir, String(this.port), this.username], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdin!.end(`${this.password}\n`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`fakebmc did not listen within ${START_TIMEOUT_MS} ms: ${this.output.trim()}`)), START_TIMEOUT_MS);
      const onData = (d: Buffer): void => {
        this.output += d.toString();
        if (this.output.includes('listening')) { clearTimeout(timer); resolve(); }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (d: Buffer) => { this.output += d.toString(); });
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`fakebmc exited with ${code}: ${this.output.trim()}`)); });
    });
  }

  state(name: 'power' | 'boot'): string | undefined {
    const f = join(this.dir, `st.${name}`);
    return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
