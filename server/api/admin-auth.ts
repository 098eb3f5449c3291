import type { Metadata } from '@grpc/grpc-js';
import { OspError } from '../../common/errors.js';
import { tokenMatches } from '../security/tokens.js';
import { bearer, type Authenticator, type Caller } from './call.js';

/**
 * Admin calls: the bearer token must hash to the stored admin token hash.
 * The hash is read through a function because it is settled only after the
 * listener is bound; until then every call is refused.
 */
export function adminAuthenticator(tokenHash: () => string | undefined): Authenticator {
  return (md: Metadata): Caller => {
    const t = bearer(md);
    const h = tokenHash();
    if (!t || !h || !tokenMatches(t, h)) throw new OspError('UNAUTHENTICATED');
    return { kind: 'admin', name: 'admin' };
  };
}
