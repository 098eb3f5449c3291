import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import path from 'node:path';
import { readIfExists, writeFileAtomic } from '../../common/files.js';

const PREFIX = 'enc:v1:';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The mask shown wherever a secret would otherwise appear. */
export const MASK = '******';

/**
 * AES-256-GCM for secrets at rest (BMC passwords). The key lives in the data
 * directory, mode 0600, apart from the database, so a copied database file
 * alone reveals nothing.
 */
export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static async loadOrCreate(dataDir: string): Promise<SecretBox> {
    const file = path.join(dataDir, 'secret.key');
    let key = await readIfExists(file);
    if (!key) {
      key = randomBytes(KEY_BYTES);
      await writeFileAtomic(file, key, 0o600);
    }
    if (key.length !== KEY_BYTES) throw new Error(`${file}: expected ${KEY_BYTES} bytes, found ${key.length}`);
    return new SecretBox(key);
  }

  static fromKey(key: Buffer): SecretBox {
    return new SecretBox(key);
  }

  encrypt(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  decrypt(sealed: string): string {
    if (!SecretBox.isSealed(sealed)) throw new Error('value is not an encrypted secret');
    const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
    d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
  }

  static isSealed(v: string): boolean {
    return v.startsWith(PREFIX);
  }
}

/** driver_info keys that hold secrets (Ironic masks the same family). */
/** A driver_info-like map with every secret value replaced by MASK: the one way secrets leave ospd. */
export function maskSecrets(info: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(info).map(([k, v]) => [k, isSecretKey(k) ? MASK : v]));
}

export function isSecretKey(key: string): boolean {
  return /(password|secret|token|_key|passphrase)$/i.test(key);
}
