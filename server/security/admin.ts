import path from 'node:path';
import YAML from 'yaml';
import { generateToken, hashToken } from './tokens.js';
import { readIfExists, writeFileAtomic } from './files.js';

/** The client configuration ospctl reads: where the server is, which CA to trust, the admin token. */
export interface AdminClientConfig {
  server: string;
  ca: string;
  token: string;
}

/**
 * First start: create the admin token, keep only its hash for checking, and
 * write admin.yaml (mode 0600) for the operator. Later starts reuse the
 * token, refreshing admin.yaml's server address and CA if they changed.
 */
export async function ensureAdminCredentials(dataDir: string, serverUrl: string, caPem: string): Promise<{ tokenHash: string; file: string }> {
  const hashFile = path.join(dataDir, 'admin-token.sha256');
  const file = path.join(dataDir, 'admin.yaml');
  const existing = await readIfExists(file);
  let storedHash = (await readIfExists(hashFile))?.toString().trim();
  let token: string | undefined;
  if (existing) {
    const doc = YAML.parse(existing.toString()) as Partial<AdminClientConfig> | null;
    if (doc?.token && (!storedHash || hashToken(doc.token) === storedHash)) token = doc.token;
  }
  if (!storedHash || (!token && !existing)) {
    token = generateToken('admin');
    storedHash = hashToken(token);
    await writeFileAtomic(hashFile, storedHash + '\n', 0o600);
  }
  if (token) {
    const doc: AdminClientConfig = { server: serverUrl, ca: caPem, token };
    const text = YAML.stringify(doc);
    if (existing?.toString() !== text) await writeFileAtomic(file, text, 0o600);
  }
  return { tokenHash: storedHash, file };
}
