/**
 * Per-deploy bearer tokens for the image download route. Issued by the
 * deploy flow for one node and one image, stored only as a sha256, compared
 * in constant time, expiring, revoked when the deploy ends. One token per
 * node: issuing again (a rebuild, a retry) replaces the previous one.
 */
import { OspError } from '../../common/errors.js';
import type { Database } from '../store/db.js';
import { imageStore } from '../store/images.js';
import { generateToken, hashToken, tokenMatches } from '../security/tokens.js';
import { validImageName } from './image-store.js';

export class DeployTokens {
  constructor(private readonly db: Database, private readonly now: () => number = Date.now) {}

  /** A fresh token letting its holder read `image` for `ttlMs`; `nodeUuid` must be a node's uuid. */
  async issue(image: string, nodeUuid: string, ttlMs: number): Promise<string> {
    validImageName(image);
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new OspError('INVALID_ARGUMENT', `ttlMs: ${ttlMs}: expected a positive whole number of milliseconds`, { field: 'ttlMs', value: ttlMs, expected: 'more than 0' });
    const token = generateToken('deploy');
    await imageStore.putDeployToken(this.db, { node_uuid: nodeUuid, image_name: image, token_hash: hashToken(token), expires_at_ms: this.now() + ttlMs }, new Date(this.now()).toISOString());
    return token;
  }

  /** True when `token` is an unexpired token issued for `image`. Every stored candidate is compared, each in constant time. */
  async check(image: string, token: string): Promise<boolean> {
    const now = this.now();
    let ok = false;
    for (const row of await imageStore.deployTokensFor(this.db, image)) {
      // No early exit: the time taken does not depend on which candidate matched.
      if (tokenMatches(token, row.token_hash) && row.expires_at_ms > now) ok = true;
    }
    return ok;
  }

  /** Ends the node's deploy token (the deploy finished, failed or was aborted); false when it had none. */
  revoke(nodeUuid: string): Promise<boolean> {
    return imageStore.deleteDeployToken(this.db, nodeUuid);
  }

  /** Drops expired rows; they already fail check(). */
  prune(): Promise<number> {
    return imageStore.deleteExpiredDeployTokens(this.db, this.now());
  }
}
