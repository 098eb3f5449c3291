import { spawn } from 'node:child_process';
import { Command } from 'commander';
import type { RamdiskCommand } from '../main.js';
import { collectInventory } from '../inventory/index.js';
import { BootParamsError, readBootParams } from './cmdline.js';
import { machineIdentity } from './identity.js';
import { RamdiskAgent } from './session.js';
import { hostDisks, rootDisks } from './wipe.js';
import { runDeploy } from './deploy.js';

interface RamdiskOpts {
  poweroffCommand: string;
  rebootCommand: string;
  minBackoffMs: number;
  maxBackoffMs: number;
}

function ms(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} ${JSON.stringify(v)}: expected a positive whole number of milliseconds`);
    return n;
  };
}

/** Runs an operator-set command line (split on spaces: it names a program, never holds secrets) and waits for it. */
function runCommandLine(line: string): Promise<void> {
  const [cmd, ...args] = line.trim().split(/\s+/);
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${line} exited with ${code}`))));
  });
}

/** `osp-agent ramdisk`: the agent baked into osp's ramdisk (inspection, cleaning; deploy later). */
export const ramdiskCommand: RamdiskCommand = async ({ paths, logger, args }) => {
  const cmd = new Command('ramdisk')
    .option('--poweroff-command <cmdline>', 'what power_off runs', 'poweroff -f')
    .option('--reboot-command <cmdline>', 'what reboot runs', 'reboot -f')
    .option('--min-backoff-ms <ms>', 'first retry delay when ospd cannot be reached', ms('--min-backoff-ms'), 500)
    .option('--max-backoff-ms <ms>', 'longest retry delay', ms('--max-backoff-ms'), 30_000)
    .exitOverride();
  cmd.parse(args, { from: 'user' });
  const o = cmd.opts<RamdiskOpts>();
  let params;
  try {
    params = await readBootParams(paths.root);
  } catch (e) {
    if (e instanceof BootParamsError) {
      logger.fatal(e.message);
      return 2;
    }
    throw e;
  }
  if (params.debug) logger.level = 'debug';
  const onHost = paths.root === '/';
  const agent = new RamdiskAgent({
    params, log: logger,
    identity: () => machineIdentity(paths.root),
    inventory: async () => ({ ...(await collectInventory({ root: paths.root })) }),
    disks: () => (onHost ? hostDisks() : rootDisks(paths.root)),
    power: (kind) => runCommandLine(kind === 'power_off' ? o.poweroffCommand : o.rebootCommand),
    deploy: (d, progress) => runDeploy(d, paths.root, logger, progress),
    minBackoffMs: o.minBackoffMs, maxBackoffMs: Math.max(o.minBackoffMs, o.maxBackoffMs),
  });
  const stop = () => agent.stop();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  logger.info({ server: params.server }, 'osp ramdisk agent starting');
  return agent.run();
};
