import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { OspError } from '../../common/errors.js';

/**
 * An exclusive run lock: a file created with O_EXCL holding the owner's pid.
 * A lock left by a dead process (crash, kill -9) is taken over.
 */
export class RunLock {
  private held = false;

  constructor(private readonly file: string) {}

  async acquire(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(this.file, 'wx', 0o600);
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        this.held = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const owner = Number((await readFile(this.file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new OspError('AGENT_RUN_LOCKED', `another osp-agent run (pid ${owner}) holds ${this.file}`, { pid: owner });
      }
      await unlink(this.file).catch(() => undefined);
    }
    throw new OspError('AGENT_RUN_LOCKED', `could not take ${this.file}`);
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await unlink(this.file).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
