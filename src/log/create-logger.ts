import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerSetup {
  level: LevelWithSilent;
  /** Human-readable lines instead of JSON; the CLI turns it on when stdout is a terminal. */
  pretty: boolean;
  /**
   * Cluster workers share stdout: each line says which process wrote it. Every line is one write, and writes of
   * at most PIPE_BUF (4096) bytes are atomic on a pipe, so lines from several workers never splice into each other.
   */
  sharedOutput?: boolean;
  /** Write to stderr instead of stdout: `getaway run` leaves stdout to the command it wraps. */
  stderr?: boolean;
}

/** Every line is written before the call that logs it returns, so exit paths have nothing to flush. */
export function createLogger(setup: LoggerSetup): Logger {
  const fd = setup.stderr === true ? 2 : 1;
  if (setup.pretty) return pino({ level: setup.level }, pretty({ colorize: true, sync: true, ignore: 'pid,hostname', destination: fd }));
  // One synchronous write per line. Gathering a turn's lines into one write (setImmediate at the turn's end) cost
  // more than the writes it saved: `npm run bench:pair -- <before> . newconn|setup|keepalive` read 0.92, 0.94 and
  // 1.01 against it (five repetitions each). pino's asynchronous destination cost a thread-pool round trip per
  // line (docs/performance.md). Synchronous also means a log reader that stops reading stalls the proxy rather
  // than letting unwritten lines grow in its memory.
  const destination = pino.destination({ dest: fd, sync: true });
  const base = setup.sharedOutput === true ? { pid: process.pid } : undefined;
  // Epoch milliseconds (pino's default): formatting an ISO date per line cost ~2% of a small request's CPU.
  return pino({ level: setup.level, base }, destination);
}
