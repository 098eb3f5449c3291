import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { generateToken, hashToken } from './tokens.js';
import { readIfExists, writeFileAtomic } from '../../common/files.js';

/** The client configuration ospctl reads: where the server is, which CA to trust, the admin token. */
export interface AdminClientConfig {
  server: string;
  ca: string;
  token: string;
}

export interface AdminCredentials {
  tokenHash: string;
  file: string;
  /** Set when admin.yaml held a token newer than the stored hash (a rotation cut short), which was adopted. */
  recovered?: boolean;
}

const HASH_FILE = 'admin-token.sha256';
const CONFIG_FILE = 'admin.yaml';

async function mtimeMs(file: string): Promise<number> {
  return (await fs.stat(file)).mtimeMs;
}

/**
 * First start: create the admin token, keep only its hash for checking, and
 * write admin.yaml (mode 0600) for the operator. Later starts reuse the
 * token, refreshing admin.yaml's server address and CA if they changed.
 *
 * Rotation writes admin.yaml before the hash, so a crash between the two
 * leaves admin.yaml newer than the hash and holding a token that does not
 * match it; that token is adopted rather than locking the operator out.
 * Whoever can write admin.yaml (0600, ospd's user) could write the hash too.
 */
export async function ensureAdminCredentials(dataDir: string, serverUrl: string, caPem: string): Promise<AdminCredentials> {
  const hashFile = path.join(dataDir, HASH_FILE);
  const file = path.join(dataDir, CONFIG_FILE);
  const existing = await readIfExists(file);
  let storedHash = (await readIfExists(hashFile))?.toString().trim();
  let token: string | undefined;
  let recovered = false;
  if (existing) {
    const doc = YAML.parse(existing.toString()) as Partial<AdminClientConfig> | null;
    if (doc?.token && (!storedHash || hashToken(doc.token) === storedHash)) token = doc.token;
    else if (doc?.token && storedHash && (await mtimeMs(file)) >= (await mtimeMs(hashFile))) {
      token = doc.token;
      storedHash = hashToken(token);
      await writeFileAtomic(hashFile, storedHash + '\n', 0o600);
      recovered = true;
    }
  }
  if (!storedHash || (!token && !existing)) {
    token = generateToken('admin');
    storedHash = hashToken(token);
    await writeFileAtomic(hashFile, storedHash + '\n', 0o600);
  }
  if (token) {
    const text = YAML.stringify({ server: serverUrl, ca: caPem, token } satisfies AdminClientConfig);
    if (existing?.toString() !== text) await writeFileAtomic(file, text, 0o600);
  }
  return { tokenHash: storedHash, file, ...(recovered ? { recovered } : {}) };
}

/**
 * Replaces the admin token: admin.yaml first, then the hash (see above for
 * why that order). Returns the new token once; only its hash stays on disk
 * outside admin.yaml.
 */
export async function rotateAdminToken(dataDir: string, serverUrl: string, caPem: string): Promise<{ token: string; tokenHash: string; file: string }> {
  const token = generateToken('admin');
  const tokenHash = hashToken(token);
  const file = path.join(dataDir, CONFIG_FILE);
  await writeFileAtomic(file, YAML.stringify({ server: serverUrl, ca: caPem, token } satisfies AdminClientConfig), 0o600);
  await writeFileAtomic(path.join(dataDir, HASH_FILE), tokenHash + '\n', 0o600);
  return { token, tokenHash, file };
}
