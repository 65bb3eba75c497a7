import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear in a log record. */
export const REDACT_PATHS = [
  'password', '*.password', '*.*.password',
  'secret', '*.secret', '*.*.secret',
  'pin', '*.pin', '*.*.pin',
  'md5', '*.md5',
  'authorization', '*.authorization', 'headers.authorization',
  'pass', '*.pass', 'auth.pass',
  'apiKey', '*.apiKey',
];

export interface LoggerSettings {
  level?: string;
  /** Pretty output (default: when stderr is a terminal). */
  pretty?: boolean;
  /** Write to this destination instead of stderr (tests). */
  destination?: NodeJS.WritableStream;
  /**
   * false: lines are buffered and written to stderr by the event loop (and synchronously at exit,
   * pino's on-exit flush) instead of one blocking write() per line. The daemon uses it: a blocking
   * write to a pipe (journald, a supervisor) cost 30-95 µs per line here, on the path of every DID
   * call; buffered, 5-10 µs. Only a SIGKILL can lose the lines of the current tick. Default true.
   */
  sync?: boolean;
}

/** Builds the process's one root logger. Everything else gets a child of it, passed in. */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? process.env.SWITCHBOARD_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { app: 'switchboard' },
  };
  if (settings.destination) return pino(options, settings.destination as never);
  const pretty = settings.pretty ?? Boolean(process.stderr.isTTY);
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } });
  }
  return pino(options, pino.destination({ dest: 2, sync: settings.sync ?? true }));
}

/** A logger that drops everything (for library use and tests that don't look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
