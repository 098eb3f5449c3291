import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

export interface AtomicWriteOptions {
  mode?: number;
  uid?: number;
  gid?: number;
}

/**
 * Writes through a temporary file in the same directory, fsyncs it, then
 * renames it over the target: readers see the old or the new file, never half.
 */
export async function atomicWrite(file: string, data: string | Buffer, opts: AtomicWriteOptions = {}): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', opts.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    // open()'s mode is filtered by the umask; the control file's mode is not.
    if (opts.mode !== undefined) await chmod(tmp, opts.mode);
    if (opts.uid !== undefined || opts.gid !== undefined) await chown(tmp, opts.uid ?? -1, opts.gid ?? -1);
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
