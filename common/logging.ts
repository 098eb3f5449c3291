import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line, at any depth pino reaches. */
export const REDACTED_KEYS = [
  'password', 'pm_password', 'token', 'authorization', 'secret',
  '*.password', '*.pm_password', '*.token', '*.authorization', '*.secret',
  '*.*.password', '*.*.token', 'driverInfo.password', 'driver_info.password',
];

export interface LoggerOptions {
  name: string;
  level?: string;
  destination?: DestinationStream;
}

/** One JSON object a line; secrets are censored before serialisation. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? process.env.OSP_LOG_LEVEL ?? 'info',
      redact: { paths: REDACTED_KEYS, censor: '******' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything: for unit tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
