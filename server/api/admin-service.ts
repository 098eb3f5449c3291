import type { Logger } from '../../common/logging.js';
import { AdminServiceService, type AdminServiceServer } from '../../proto/gen/osp/v1/admin.js';
import { unary, type Authenticator } from './call.js';

export interface AdminTokenRotator {
  /** Writes the new token's config and hash, switches the check to it, and returns it. */
  rotate(): Promise<{ token: string; file: string }>;
}

/** AdminService: operations on ospd itself, behind the admin token like every other admin call. */
export function adminService(rotator: AdminTokenRotator, auth: Authenticator, log: Logger) {
  // Two rotations at once would race on admin.yaml and the hash; one at a time.
  let chain: Promise<unknown> = Promise.resolve();
  const impl: AdminServiceServer = {
    rotateAdminToken: unary(log, 'RotateAdminToken', auth, async (_req, ctx) => {
      const run = chain.then(() => rotator.rotate());
      chain = run.catch(() => undefined);
      const { token, file } = await run;
      ctx.log.warn({ adminConfig: file }, 'admin token rotated; the previous token no longer works');
      return { token, adminConfigPath: file, rotatedAt: new Date().toISOString() };
    }),
  };
  return { definition: AdminServiceService, impl };
}
