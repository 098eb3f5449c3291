import { createHash, timingSafeEqual } from 'node:crypto';

/** Who a connected MQTT client is, once authenticated. */
export type MqttIdentity =
  | { kind: 'agent'; node: string }
  | { kind: 'reader'; name: string }
  | { kind: 'server' };

/**
 * Checks MQTT credentials. ospd backs it with the hashed node tokens and the
 * reader accounts in the store; null means "refuse".
 */
export interface MqttAuthenticator {
  authenticate(username: string, password: Buffer): Promise<MqttIdentity | null>;
}

function digest(secret: Buffer | string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/**
 * In-memory accounts, for tests and benchmarks. Secrets are kept only as
 * sha256 digests and compared in constant time, like the store-backed one.
 */
export class InMemoryAuthenticator implements MqttAuthenticator {
  private readonly accounts = new Map<string, { digest: Buffer; identity: MqttIdentity }>();

  addAgent(node: string, token: string): this {
    this.accounts.set(node, { digest: digest(token), identity: { kind: 'agent', node } });
    return this;
  }

  addReader(name: string, password: string): this {
    this.accounts.set(name, { digest: digest(password), identity: { kind: 'reader', name } });
    return this;
  }

  remove(username: string): void {
    this.accounts.delete(username);
  }

  async authenticate(username: string, password: Buffer): Promise<MqttIdentity | null> {
    const account = this.accounts.get(username);
    // Hash even for unknown users so timing does not reveal which names exist.
    const offered = digest(password);
    if (!account) return null;
    return timingSafeEqual(offered, account.digest) ? account.identity : null;
  }
}
