/**
 * Maps a requested name (TFTP filename or HTTP path) onto the root directory without ever leaving it.
 * Checks happen on the raw name first (so nothing is normalised away), then
 * on the real path after symlinks are followed.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';

export class AccessViolation extends Error {}

export function checkName(name: string): string {
  if (name.length === 0) throw new AccessViolation('empty filename');
  if (name.includes('\0')) throw new AccessViolation('filename contains NUL');
  if (name.includes('\\')) throw new AccessViolation('filename contains a backslash');
  if (name.startsWith('/')) throw new AccessViolation('absolute paths are refused');
  const segments = name.split('/');
  if (segments.some((s) => s === '..')) throw new AccessViolation('".." is refused');
  return segments.filter((s) => s !== '' && s !== '.').join('/');
}

/**
 * Returns the real path of `name` under `realRoot` (which must itself be a
 * realpath). Throws AccessViolation when the name or a symlink leads outside,
 * and passes ENOENT through for "file not found".
 */
export async function resolveUnderRoot(realRoot: string, name: string): Promise<string> {
  const rel = checkName(name);
  const real = await realpath(path.join(realRoot, rel));
  // Compare with a trailing separator so /srv/tftp does not contain /srv/tftp-private.
  if (real !== realRoot && !real.startsWith(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep)) {
    throw new AccessViolation('path resolves outside the TFTP root');
  }
  return real;
}
