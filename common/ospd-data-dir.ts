import os from 'node:os';
import path from 'node:path';

/**
 * Where ospd keeps its state when --data-dir is not given, and so where
 * ospctl on the same machine finds the admin.yaml ospd wrote there.
 */
export function defaultOspdDataDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/ospd';
  return path.join(os.homedir(), '.local', 'share', 'ospd');
}
