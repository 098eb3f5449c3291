import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A bearer token: 32 random bytes, base64url, with a prefix naming its kind. */
export function generateToken(kind: 'admin' | 'agent' | 'mqtt' | 'deploy'): string {
  return `osp${kind[0]}_${randomBytes(32).toString('base64url')}`;
}

/** Tokens carry 256 bits of entropy, so one SHA-256 round is enough to store them. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Compares a presented token with a stored hash in constant time. */
export function tokenMatches(presented: string, storedHashHex: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = Buffer.from(storedHashHex, 'hex');
  return b.length === a.length && timingSafeEqual(a, b);
}
