import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, closeSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { LISTENERS_FILE, type BoundListeners } from '../../server/ospd.js';

export const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const OSPD = path.join(REPO, 'bin', 'ospd');
export const OSPCTL = path.join(REPO, 'bin', 'ospctl');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion, bounded by timeoutMs. */
export function runProgram(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60_000} ms`));
    }, opts.timeoutMs ?? 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    // A program that exits without reading its stdin (most never do) makes this write fail with EPIPE: not the test's error.
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
  });
}

/** A real ospd process on an ephemeral loopback port with its own data dir. */
export class OspdProcess {
  proc?: ChildProcess;
  readonly logFile: string;
  readonly dataDir: string;
  port = 0;
  /** What ospd bound, from its listeners file (set by start()). */
  listeners?: BoundListeners;
  private exited?: Promise<number | null>;

  private readonly ownsDataDir: boolean;

  /** wrap: a command prefix for ospd and ospctl, e.g. ['ip', 'netns', 'exec', NS] to run them in a test namespace. */
  constructor(dataDir?: string, readonly extraArgs: string[] = [], readonly wrap: string[] = []) {
    this.ownsDataDir = dataDir === undefined;
    this.dataDir = dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'ospd-test-'));
    this.logFile = path.join(path.dirname(this.dataDir), `${path.basename(this.dataDir)}.log`);
  }

  get adminConfig(): string {
    return path.join(this.dataDir, 'admin.yaml');
  }

  /** Starts ospd and waits (bounded) for the listeners file it writes once ready, which names every port it bound. */
  async start(timeoutMs = 30_000): Promise<void> {
    const fd = openSync(this.logFile, 'a');
    // Ephemeral ports the first time, so servers run side by side; a restart keeps the ports bound
    // before, as a restarted ospd keeps its configured ones (extraArgs may override: the last flag wins).
    const before = this.listeners;
    const port = (p: string | number | undefined) => `127.0.0.1:${typeof p === 'string' ? /:(\d+)$/.exec(p)![1] : p ?? 0}`;
    const args = [
      '--data-dir', this.dataDir, '--grpc-listen', port(before?.grpc), '--mqtt-listen', port(before?.mqtt.tls), '--mqtt-plain-listen', port(before?.mqtt.plain),
      '--http-listen', port(before?.pxe.http), '--tftp-listen', port(before?.pxe.tftp), '--dhcp-listen', 'off', ...this.extraArgs,
    ];
    const [cmd, ...pre] = this.wrap.length ? [...this.wrap, process.execPath] : [process.execPath];
    const file = path.join(this.dataDir, LISTENERS_FILE);
    // A file left by an earlier run must not pass for this one's (ospd removes it too, but only once it runs).
    rmSync(file, { force: true });
    this.proc = spawn(cmd, [...pre, OSPD, ...args], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.exited = new Promise((resolve) => this.proc!.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + timeoutMs;
    const startOffset = this.log().length;
    while (Date.now() < deadline) {
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      if (text) {
        this.listeners = JSON.parse(text) as BoundListeners;
        this.port = Number(/:(\d+)$/.exec(this.listeners.grpc)![1]);
        return;
      }
      if (this.proc.exitCode !== null) throw new Error(`ospd exited with ${this.proc.exitCode}: ${this.log().slice(startOffset)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`ospd did not start in ${timeoutMs} ms: ${this.log().slice(startOffset)}`);
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  admin(): { server: string; ca: string; token: string } {
    return YAML.parse(readFileSync(this.adminConfig, 'utf8'));
  }

  ctl(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
    const [cmd, ...pre] = this.wrap.length ? [...this.wrap, process.execPath] : [process.execPath];
    return runProgram(cmd, [...pre, OSPCTL, ...args], { env: { OSPCTL_CONFIG: this.adminConfig, ...opts.env }, timeoutMs: opts.timeoutMs });
  }

  /** ospctl ARGS -f json, which must succeed with nothing on stderr; its parsed output. */
  async json<T = unknown>(args: string[]): Promise<T> {
    const r = await this.ctl([...args, '-f', 'json']);
    if (r.code !== 0 || r.stderr) throw new Error(`ospctl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Sends a signal and waits for exit (bounded); returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<number | null> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc?.exitCode ?? null;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code ?? null;
  }

  /** Stops ospd, then removes the data dir and log when this harness made them (a caller's dir is the caller's). */
  async dispose(): Promise<void> {
    await this.stop();
    if (!this.ownsDataDir) return;
    rmSync(this.dataDir, { recursive: true, force: true });
    rmSync(this.logFile, { force: true });
  }
}

/** A TripleO instackenv document with n fake-BMC ipmi nodes. */
export function nodeFile(n: number, opts: { password?: string; prefix?: string; macBase?: number } = {}): string {
  const nodes = Array.from({ length: n }, (_, i) => {
    const k = (opts.macBase ?? 0) + i;
    return {
      name: `${opts.prefix ?? 'node'}-${i}`,
      pm_type: 'ipmi',
      pm_addr: `192.0.2.${(k % 250) + 1}`,
      pm_user: 'admin',
      pm_password: opts.password ?? 'Secret-Pass',
      pm_port: '623',
      mac: [`52:54:00:${((k >> 16) & 255).toString(16).padStart(2, '0')}:${((k >> 8) & 255).toString(16).padStart(2, '0')}:${(k & 255).toString(16).padStart(2, '0')}`],
      cpu: '4', memory: '8192', disk: '100', arch: 'x86_64',
      capabilities: i % 2 ? 'profile:compute,boot_mode:uefi' : 'profile:control',
    };
  });
  return JSON.stringify({ nodes }, null, 2);
}
