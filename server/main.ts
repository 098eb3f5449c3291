import { Command, Option } from 'commander';
import { isOspError } from '../common/errors.js';
import { OSP_VERSION } from '../common/version.js';
import { readConfigFile, resolveConfig, settings, type OspdConfig } from './config.js';
import { buildOspd, type Ospd } from './ospd.js';

function flagsProgram(): Command {
  const p = new Command('ospd')
    .description('osp server: node registry, BMC control, PXE, agents, telemetry')
    .version(OSP_VERSION)
    .option('--config <file>', 'YAML configuration file (keys are the flag names without --)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const s of settings) {
    const flag = s.arg ? `--${s.key} <${s.arg}>` : `--${s.key}`;
    const o = new Option(flag, s.describe);
    p.addOption(s.repeatable ? o.argParser((v: string, prev: string[] = []) => [...prev, v]) : o);
  }
  return p;
}

/** bin/ospd: parse, configure, start, and stop cleanly on SIGTERM/SIGINT. */
export async function run(argv: string[]): Promise<void> {
  const program = flagsProgram();
  let cfg: OspdConfig;
  try {
    program.parse(argv, { from: 'user' });
    const opts = program.opts<Record<string, string | string[]>>();
    const fromFile = opts.config ? await readConfigFile(String(opts.config)) : {};
    const fromFlags = Object.fromEntries(settings.map((s) => [s.key, opts[camel(s.key)]]));
    cfg = resolveConfig(fromFile, fromFlags);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message: string };
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
    if (isOspError(e)) process.stderr.write(`ospd: ${e.message}\n`);
    else if (!err.code?.startsWith('commander.')) process.stderr.write(`ospd: ${err.message}\n`);
    process.exit(2);
  }
  let app: Ospd;
  try {
    app = await buildOspd(cfg);
  } catch (e) {
    process.stderr.write(`ospd: cannot start: ${(e as Error).message}\n`);
    process.exit(isOspError(e) ? 2 : 1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutdown requested');
    app.stop().then(() => process.exit(0), (e) => {
      app.log.error({ err: e }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await app.start();
  } catch (e) {
    app.log.fatal({ err: e }, 'ospd failed to start');
    process.stderr.write(`ospd: cannot start: ${(e as Error).message}\n`);
    process.exit(1);
  }
}

function camel(k: string): string {
  return k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
