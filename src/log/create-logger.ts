import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerSetup {
  level: LevelWithSilent;
  /** Human-readable lines instead of JSON; the CLI turns it on when stdout is a terminal. */
  pretty: boolean;
  /**
   * One write per line. Cluster workers share stdout, and only a single write of under PIPE_BUF bytes is atomic
   * on a pipe: batched asynchronous writes from several processes could splice lines into each other.
   */
  syncWrites?: boolean;
}

export interface CreatedLogger {
  logger: Logger;
  /** Writes out what the asynchronous destination still holds; call before exiting. */
  flush(): void;
}

export function createLogger(setup: LoggerSetup): CreatedLogger {
  if (setup.pretty) {
    const logger = pino({ level: setup.level }, pretty({ colorize: true, sync: true, ignore: 'pid,hostname' }));
    return { logger, flush: () => undefined };
  }
  // Asynchronous writes keep logging off the request path; flushSync() on exit makes sure nothing is lost.
  const destination = pino.destination({ dest: 1, sync: setup.syncWrites === true });
  // Several processes write one stream in cluster mode: each line then says which one it came from.
  const base = setup.syncWrites === true ? { pid: process.pid } : undefined;
  // Epoch milliseconds (pino's default): formatting an ISO date per line cost ~2% of a small request's CPU.
  const logger = pino({ level: setup.level, base }, destination);
  return { logger, flush: () => destination.flushSync() };
}
