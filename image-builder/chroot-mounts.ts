import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from '../common/logging.js';
import { OspError } from '../common/errors.js';
import { runCommand } from './run-command.js';

/**
 * The pseudo filesystems a chrooted phase needs (/proc, /sys, /dev, /dev/pts).
 * stop() unmounts whatever start() managed to mount, even after a partial start,
 * and falls back to a lazy unmount so a busy mount never survives the build.
 */
export class ChrootMounts {
  private readonly mounted: string[] = [];

  constructor(private readonly root: string, private readonly logger: Logger) {}

  async start(): Promise<void> {
    const plan: Array<{ target: string; argv: string[] }> = [
      { target: 'proc', argv: ['-t', 'proc', 'proc'] },
      { target: 'sys', argv: ['-t', 'sysfs', 'sysfs'] },
      { target: 'dev', argv: ['--bind', '/dev'] },
      { target: 'dev/pts', argv: ['-t', 'devpts', 'devpts'] },
    ];
    for (const m of plan) {
      const target = join(this.root, m.target);
      mkdirSync(target, { recursive: true });
      const r = await runCommand(['mount', ...m.argv, target]);
      if (r.exitCode !== 0) {
        await this.stop();
        throw new OspError('IMAGE_BUILD_FAILED', `mount ${m.argv.join(' ')} on ${target} failed (exit ${r.exitCode}): ${r.stderr.trim()}`, { target });
      }
      this.mounted.push(target);
    }
  }

  async stop(): Promise<void> {
    while (this.mounted.length > 0) {
      const target = this.mounted.pop()!;
      const r = await runCommand(['umount', target]);
      if (r.exitCode !== 0) {
        this.logger.warn({ target, stderr: r.stderr.trim() }, 'umount failed, detaching lazily');
        await runCommand(['umount', '-l', target]);
      }
    }
  }
}

/** Mount points at or below dir, from the kernel's view: used to prove nothing leaked. */
export function mountsUnder(dir: string): string[] {
  const base = resolve(dir);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === base || p.startsWith(base + '/'));
}
