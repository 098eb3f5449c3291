import { Command, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { isOspError } from '../common/errors.js';
import { createLogger, type Logger } from '../common/logging.js';
import { JsonCache, readJson } from './collect/cache.js';
import { Collector } from './collect/collector.js';
import { CachedServerSource } from './collect/server-cache.js';
import { configGet, KEY_TYPES, type KeyType } from './config-key.js';
import { Engine, MERGED_CACHE, type RunResult } from './engine.js';
import { agentPaths, type AgentPaths } from './paths.js';

/**
 * `run --config agent.yaml` (agent/transport/run.ts): receives the engine and
 * the server cache; on each revision it calls `server.update(cfg)` then
 * `runner.notify()` (see AgentRunner) and acks each RunResult. Resolves to the exit status.
 */
export type RunCommand = (ctx: { configPath: string; paths: AgentPaths; engine: Engine; server: CachedServerSource; logger: Logger }) => Promise<number>;

/** `osp-agent ramdisk [args...]` (agent/ramdisk/command.ts); resolves to the exit status. */
export type RamdiskCommand = (ctx: { paths: AgentPaths; logger: Logger; args: string[] }) => Promise<number>;

/** The commands that live outside this module, handed in by the entry point (agent/cli-entry.ts). */
export interface AgentCommands {
  run: RunCommand;
  ramdisk: RamdiskCommand;
}

interface GlobalOpts {
  root: string;
  logLevel?: string;
}

function logger(g: GlobalOpts): Logger {
  // Synchronous so short CLI runs never lose their last lines at exit.
  return createLogger({ name: 'osp-agent', level: g.logLevel, destination: pino.destination({ fd: 2, sync: true }) });
}

async function openEngine(g: GlobalOpts, scriptTimeoutMs?: number): Promise<{ engine: Engine; server: CachedServerSource; paths: AgentPaths }> {
  const paths = agentPaths(g.root);
  const server = new CachedServerSource(new JsonCache(paths.cacheDir));
  await server.load();
  // Hooks call `osp-agent config get`; put this very binary first on their PATH.
  const binDir = path.dirname(process.execPath);
  const env = { PATH: `${binDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
  const engine = new Engine({ paths, server, logger: logger(g), scriptTimeoutMs, env });
  return { engine, server, paths };
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} = ${JSON.stringify(v)}; expected a positive integer`);
    return n;
  };
}

export function buildCli(out: (s: string) => void, commands: AgentCommands): Command {
  const program = new Command('osp-agent')
    .description('osp node agent: collects config, renders files, runs hooks and software deployments')
    .option('--root <dir>', 'treat DIR as / for every path the agent reads or writes', '/')
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error)')
    .showHelpAfterError();

  program
    .command('apply')
    .description('collect from local sources and the cached server config, then apply if it changed')
    .option('--once', 'run once and exit (the only mode without a transport)')
    .option('--force', 'run even if the merged config did not change')
    .option('--script-timeout-ms <ms>', 'kill a hook or deployment script (and its process group) after this long', positiveInt('--script-timeout-ms'))
    .action(async (o: { once?: boolean; force?: boolean; scriptTimeoutMs?: number }) => {
      if (!o.once) throw new Error('apply: pass --once (continuous mode is `osp-agent run --config agent.yaml`)');
      const { engine } = await openEngine(program.opts<GlobalOpts>(), o.scriptTimeoutMs);
      const r: RunResult = await engine.run({ force: o.force });
      out(JSON.stringify(r, null, 2));
      process.exitCode = r.status === 'succeeded' ? 0 : 1;
    });

  const config = program.command('config').description('read the merged configuration');
  config
    .command('get <key>')
    .description('print one dotted key of the merged config (os-apply-config --key)')
    .addOption(new Option('--type <type>', 'value type').choices([...KEY_TYPES]).default('str'))
    .option('--default <value>', 'printed when the key is missing')
    .action(async (key: string, o: { type: KeyType; default?: string }) => {
      const data = await currentConfig(program.opts<GlobalOpts>());
      out(configGet(data, key, o.type, o.default));
    });

  program
    .command('status')
    .description('print the last run result as JSON')
    .action(async () => {
      const paths = agentPaths(program.opts<GlobalOpts>().root);
      const last = await readJson<RunResult>(paths.lastResultPath);
      if (!last) throw new Error(`no run recorded yet (${paths.lastResultPath} is missing); run osp-agent apply --once`);
      const commit = await new JsonCache(paths.cacheDir).read('commit');
      out(JSON.stringify({ lastRun: last, committed: commit ?? null }, null, 2));
      process.exitCode = last.status === 'succeeded' ? 0 : 1;
    });

  program
    .command('run')
    .description('long-running service: hold the stream to ospd and apply each revision')
    .requiredOption('--config <file>', 'agent.yaml (server URL, CA, node, token)')
    .action(async (o: { config: string }) => {
      const g = program.opts<GlobalOpts>();
      const { engine, server, paths } = await openEngine(g);
      process.exitCode = await commands.run({ configPath: o.config, paths, engine, server, logger: logger(g) });
    });

  program
    .command('ramdisk')
    .description('ramdisk mode: enrol, inspect, clean, deploy')
    .allowUnknownOption()
    .argument('[args...]')
    .action(async (args: string[]) => {
      const g = program.opts<GlobalOpts>();
      process.exitCode = await commands.ramdisk({ paths: agentPaths(g.root), logger: logger(g), args });
    });
  return program;
}

/** The config a hook sees: the run in progress (OSP_CONFIG_FILE), else the committed one, else a fresh collection. */
async function currentConfig(g: GlobalOpts): Promise<Record<string, unknown>> {
  const fromEnv = process.env.OSP_CONFIG_FILE;
  if (fromEnv) return JSON.parse(await readFile(fromEnv, 'utf8')) as Record<string, unknown>;
  const paths = agentPaths(g.root);
  const cache = new JsonCache(paths.cacheDir);
  const merged = await cache.read<Record<string, unknown>>(MERGED_CACHE);
  if (merged) return merged;
  const server = new CachedServerSource(cache);
  await server.load();
  return (await new Collector({ server, localDataDir: paths.localDataDir, cmdlinePath: paths.cmdlinePath }).collect()).merged;
}

export async function main(argv: string[], commands: AgentCommands): Promise<number> {
  try {
    await buildCli((s) => process.stdout.write(s + '\n'), commands).parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const code = isOspError(e) ? ` [${e.code}]` : '';
    process.stderr.write(`osp-agent: ${(e as Error).message}${code}\n`);
    return 1;
  }
}
