import { Command, Option } from 'commander';
import { promises as fs } from 'node:fs';
import { FORMATS, UsageError, type Format } from './output.js';
import { loadClientConfig } from './client-config.js';
import { Connection } from './client.js';

/** What every command gets: a lazily opened connection and its output options. */
export interface Ctx {
  connect(): Promise<Connection>;
  out(s: string): void;
}

export interface OutputOpts {
  format: Format;
  column: string[];
  long?: boolean;
}

export function withOutput(cmd: Command, opts: { long?: boolean } = {}): Command {
  cmd.addOption(new Option('-f, --format <format>', 'output format').choices(FORMATS).default('table'));
  cmd.option('-c, --column <name>', 'show only this column (repeatable)', (v: string, prev: string[] = []) => [...prev, v], []);
  if (opts.long) cmd.option('--long', 'show more columns');
  return cmd;
}

export function repeatable(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** k=v pairs from repeatable flags; a pair without '=' is a usage error naming the flag. */
export function keyValues(flag: string, list: string[] = []): [string, string][] {
  return list.map((s) => {
    const i = s.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag} ${s}: expected KEY=VALUE`);
    return [s.slice(0, i), s.slice(i + 1)];
  });
}

export function positiveInt(flag: string) {
  return (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${flag} ${v}: expected a whole number of at least 1`);
    return Number(v);
  };
}

export function makeCtx(globals: () => { config?: string; timeout: number }): Ctx {
  let conn: Connection | undefined;
  return {
    async connect() {
      if (!conn) {
        const g = globals();
        conn = new Connection(await loadClientConfig(g.config), g.timeout * 1000);
      }
      return conn;
    },
    out: (s) => process.stdout.write(s),
  };
}

/** Reads a file named on the command line; a missing or unreadable one is a usage error naming it. */
export async function readInputFile(file: string, flag = ''): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag ? `${flag} ` : ''}${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
