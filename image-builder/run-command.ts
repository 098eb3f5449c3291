import { spawn } from 'node:child_process';

/** What a finished child process left behind; stdout/stderr are bounded to the last bytes. */
export interface CommandResult {
  exitCode: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, then closed. */
  input?: string | Buffer;
  /** Stream output through to the parent (build logs) instead of only capturing it. */
  inheritOutput?: boolean;
  /** Keep at most this much of each stream, so a chatty build cannot exhaust memory. */
  captureLimitBytes?: number;
}

/** Runs argv without a shell (so no argument is ever re-parsed) and never throws on exit codes. */
export function runCommand(argv: string[], opts: RunOptions = {}): Promise<CommandResult> {
  const limit = opts.captureLimitBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const keep = (acc: string, chunk: Buffer): string => {
      const next = acc + chunk.toString('utf8');
      return next.length > limit ? next.slice(next.length - limit) : next;
    };
    child.stdout.on('data', (c: Buffer) => {
      stdout = keep(stdout, c);
      if (opts.inheritOutput) process.stderr.write(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = keep(stderr, c);
      if (opts.inheritOutput) process.stderr.write(c);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ exitCode: code ?? 128, signal, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
