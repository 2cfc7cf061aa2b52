import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';
import { TurnBatchedDestination } from './turn-batched-destination.js';

/** Writes of at most this many bytes are atomic on a Linux pipe. */
const PIPE_BUF = 4096;

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerSetup {
  level: LevelWithSilent;
  /** Human-readable lines instead of JSON; the CLI turns it on when stdout is a terminal. */
  pretty: boolean;
  /**
   * Cluster workers share stdout: every write stays within PIPE_BUF bytes (atomic on a pipe) and each line says
   * which process wrote it.
   */
  sharedOutput?: boolean;
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
  // One write per event-loop turn for all the lines it logged; flushSync() on exit writes the last turn's.
  const destination = new TurnBatchedDestination(pino.destination({ dest: 1, sync: true }), setup.sharedOutput === true ? PIPE_BUF : undefined);
  const base = setup.sharedOutput === true ? { pid: process.pid } : undefined;
  // Epoch milliseconds (pino's default): formatting an ISO date per line cost ~2% of a small request's CPU.
  const logger = pino({ level: setup.level, base }, destination);
  return { logger, flush: () => destination.flushSync() };
}
