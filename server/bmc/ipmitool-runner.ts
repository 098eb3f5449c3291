import { spawn } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface IpmitoolResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface IpmitoolCall {
  host: string;
  port: number;
  username: string;
  password: string;
  cipherSuite: number;
  args: string[];
  timeoutMs: number;
}

/**
 * Runs one ipmitool command. The password goes into a fresh 0600 file in a
 * 0700 directory (ipmitool `-f`), never argv or env: /proc/<pid>/cmdline and
 * environ of a child are readable by other users or by the same user's other
 * processes. The file is removed whatever the outcome.
 */
export async function runIpmitool(ipmitoolPath: string, call: IpmitoolCall): Promise<IpmitoolResult> {
  const dir = await mkdtemp(join(tmpdir(), 'osp-ipmi-'));
  const pwFile = join(dir, 'pw');
  try {
    await writeFile(pwFile, call.password, { mode: 0o600 });
    const argv = [
      '-I', 'lanplus', '-C', String(call.cipherSuite),
      '-H', call.host, '-p', String(call.port),
      '-U', call.username, '-f', pwFile,
      // ipmitool's own retransmit budget; our timer below is the hard bound.
      '-N', '1', '-R', '2',
      ...call.args,
    ];
    const env = { ...process.env };
    delete env.IPMI_PASSWORD;
    return await new Promise<IpmitoolResult>((resolve) => {
      const child = spawn(ipmitoolPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, call.timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        resolve({ exitCode: -1, stdout, stderr: stderr + String(e), timedOut });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ exitCode: code, stdout, stderr, timedOut });
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
