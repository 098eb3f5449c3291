import { Command } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { AdminServiceClient } from '../../proto/gen/osp/v1/admin.js';
import { writeFileAtomic } from '../../common/files.js';
import { ServerError } from '../client.js';
import { renderOne } from '../output.js';
import { withOutput, type Ctx, type OutputOpts } from '../command-kit.js';

/** Puts the new token into the config this ospctl read, keeping its other keys and comments. */
async function updateClientConfig(file: string, token: string): Promise<void> {
  const doc = YAML.parseDocument(await fs.readFile(file, 'utf8'));
  doc.set('token', token);
  await writeFileAtomic(file, String(doc), 0o600);
}

/** `ospctl admin …`: operations on ospd itself. */
export function adminCommand(ctx: Ctx): Command {
  const admin = new Command('admin').description('administer ospd itself (admin token)');
  withOutput(admin.command('rotate-token')
    .description('replace the admin token; the old one stops working at once, and the config ospctl used is updated'))
    .action(async (o: OutputOpts) => {
      const c = await ctx.connect();
      const a = c.client(AdminServiceClient);
      const r = await c.call(a, a.rotateAdminToken, {});
      try {
        // ospd already rewrote its own admin.yaml; any other copy is ours to update.
        const same = await fs.realpath(c.cfg.source).then((p) => p === path.resolve(r.adminConfigPath), () => false);
        if (!same) await updateClientConfig(c.cfg.source, r.token);
      } catch (e) {
        // The rotation stands; say where the token is instead of printing it.
        throw new ServerError(`admin token rotated, but ${c.cfg.source} could not be updated (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the new token is in ${r.adminConfigPath} on the ospd host`, 'CLIENT_CONFIG_NOT_UPDATED');
      }
      ctx.out(renderOne({ rotatedAt: r.rotatedAt, config: c.cfg.source, serverConfig: r.adminConfigPath }, [
        { key: 'rotated_at', label: 'Rotated At', get: (x) => x.rotatedAt },
        { key: 'config', label: 'Updated Config', get: (x) => x.config },
        { key: 'server_config', label: 'Server Admin Config', get: (x) => x.serverConfig },
      ], o.format, o.column));
    });
  return admin;
}
