import { Command, CommanderError } from 'commander';
import { UsageError } from './output.js';
import { ServerError } from './client.js';
import { makeCtx } from './command-kit.js';
import { nodeCommand } from './commands/node.js';
import { telemetryCommands } from './commands/telemetry.js';
import { profileCommand, ruleCommand } from './commands/rule.js';
import { pxeCommand } from './commands/pxe.js';
import { adminCommand } from './commands/admin.js';
import { imageCommand } from './commands/image.js';
import { stackCommand } from './commands/stack.js';
import { overcloudCommand } from './commands/overcloud.js';
import { OSP_VERSION } from '../common/version.js';

/** Builds the command tree; each feature contributes one top-level command. */
export function program(): Command {
  const root = new Command('ospctl')
    .description('operator CLI for ospd (gRPC over TLS, admin token from admin.yaml)')
    .version(OSP_VERSION)
    .option('--config <file>', "client config (default: $OSPCTL_CONFIG, ~/.config/ospctl/config.yaml, then ospd's admin.yaml)")
    .option('--timeout <seconds>', 'per-call deadline in seconds', (v) => {
      if (!/^\d+$/.test(v) || +v < 1) throw new UsageError(`--timeout ${v}: expected whole seconds, at least 1`);
      return Number(v);
    }, 30)
    .showHelpAfterError(false)
    // Global flags go before the command (ospctl --config F node …), so a command may
    // have its own --config (node deployment add --config SCRIPT).
    .enablePositionalOptions();
  const ctx = makeCtx(() => root.opts<{ config?: string; timeout: number }>());
  root.addCommand(nodeCommand(ctx));
  for (const c of telemetryCommands(ctx)) root.addCommand(c);
  root.addCommand(ruleCommand(ctx));
  root.addCommand(profileCommand(ctx));
  root.addCommand(pxeCommand(ctx));
  root.addCommand(adminCommand(ctx));
  root.addCommand(imageCommand(ctx));
  root.addCommand(stackCommand(ctx));
  root.addCommand(overcloudCommand(ctx));
  return root;
}

function applyExitOverride(cmd: Command): void {
  cmd.exitOverride();
  cmd.configureOutput({ outputError: () => undefined });
  for (const sub of cmd.commands) applyExitOverride(sub);
}

/** Exit codes: 0 success, 1 the server refused or failed, 2 usage or local errors. */
export async function run(argv: string[]): Promise<number> {
  const root = program();
  applyExitOverride(root);
  try {
    await root.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      process.stderr.write(`ospctl: ${e.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    if (e instanceof ServerError) {
      process.stderr.write(`ospctl: ${e.message}\n`);
      return 1;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`ospctl: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`ospctl: unexpected error: ${(e as Error).message}\n`);
    return 2;
  }
}
