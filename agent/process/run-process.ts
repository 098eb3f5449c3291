import { spawn } from 'node:child_process';

export interface RunProcessOptions {
  args?: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  stdin?: string;
  timeoutMs: number;
  /** How much of each stream is kept for the acknowledgement. */
  tailBytes?: number;
  /** Keep the whole stdout (executable templates print the file body). */
  captureFullStdout?: boolean;
}

export interface ProcessOutcome {
  exitCode: number;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  stdoutTail: string;
  stderrTail: string;
  stdout?: string;
  /** Set when the program could not be started at all (ENOENT, EACCES). */
  spawnError?: string;
}

export const DEFAULT_TAIL_BYTES = 4096;

/** Keeps only the last `limit` bytes of a stream without buffering it all. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - this.chunks[0].length >= this.limit) {
      this.size -= this.chunks.shift()!.length;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/**
 * Runs one program in its own process group so a timeout can kill the whole
 * tree it started (hooks commonly fork daemons or pipelines).
 */
export function runProcess(file: string, opts: RunProcessOptions): Promise<ProcessOutcome> {
  const tailBytes = opts.tailBytes ?? DEFAULT_TAIL_BYTES;
  const started = process.hrtime.bigint();
  const elapsedMs = (): number => Number((process.hrtime.bigint() - started) / 1_000_000n);
  return new Promise((resolve) => {
    const out = new Tail(tailBytes);
    const err = new Tail(tailBytes);
    const full: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    const child = spawn(file, opts.args ?? [], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, opts.timeoutMs);
    const finish = (o: Omit<ProcessOutcome, 'durationMs' | 'stdoutTail' | 'stderrTail' | 'timedOut'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        ...o,
        timedOut,
        durationMs: elapsedMs(),
        stdoutTail: out.text(),
        stderrTail: err.text(),
        ...(opts.captureFullStdout ? { stdout: Buffer.concat(full).toString('utf8') } : {}),
      });
    };
    child.stdout.on('data', (b: Buffer) => {
      out.push(b);
      if (opts.captureFullStdout) full.push(b);
    });
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => finish({ exitCode: 127, signal: null, spawnError: e.message }));
    child.on('close', (code, signal) => {
      // A timed-out child may leave grandchildren holding the pipes; the group kill covers them.
      finish({ exitCode: code ?? 128 + signalNumber(signal), signal });
    });
    // A program that does not read stdin must not fail the run with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.stdin ?? '');
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  if (signal === 'SIGKILL') return 9;
  if (signal === 'SIGTERM') return 15;
  if (signal === 'SIGINT') return 2;
  return 0;
}
