import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';
import { registerJsonLineSink } from './json-lines.js';
import { LineBatcher } from './line-batcher.js';
import { LineBytes } from './line-bytes.js';

/** The most bytes one write(2) to a pipe moves atomically (POSIX's minimum, Linux's value). */
const PIPE_BUF = 4096;

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerSetup {
  level: LevelWithSilent;
  /** Human-readable lines instead of JSON; the CLI turns it on when stdout is a terminal. */
  pretty: boolean;
  /**
   * Cluster workers share stdout: each line says which process wrote it. Writes stay within PIPE_BUF (4096 bytes,
   * atomic on a pipe) and end at a line's end, so lines from several workers never splice into each other.
   */
  sharedOutput?: boolean;
  /** Write to stderr instead of stdout: `getaway run` leaves stdout to the command it wraps. */
  stderr?: boolean;
  /** Write to this open file descriptor instead of stdout (or stderr, with `stderr`). */
  fd?: number;
}

/**
 * JSON lines are batched (LineBatcher): written at most 100 ms late, within PIPE_BUF per write where workers share
 * the output, everything pending written on exit. Pretty output, meant for a person at a terminal, is written line
 * by line.
 */
export function createLogger(setup: LoggerSetup): Logger {
  const fd = setup.fd ?? (setup.stderr === true ? 2 : 1);
  if (setup.pretty) return pino({ level: setup.level }, pretty({ colorize: true, sync: true, ignore: 'pid,hostname', destination: fd }));
  // Synchronous writes: pino's asynchronous destination cost a thread-pool round trip per line (docs/performance.md).
  // One process alone on its output needs no PIPE_BUF bound: larger batches, fewer system calls.
  const destination = new LineBatcher(fd, { maxBytes: setup.sharedOutput === true ? PIPE_BUF : 64 * 1024 });
  const base = setup.sharedOutput === true ? { pid: process.pid } : undefined;
  // Epoch milliseconds (pino's default): formatting an ISO date per line cost ~2% of a small request's CPU.
  const logger = pino({ level: setup.level, base }, destination);
  const levelBytes = { info: Buffer.from(`{"level":${logger.levels.values['info']},"time":`), warn: Buffer.from(`{"level":${logger.levels.values['warn']},"time":`) };
  const bindingBytes = Buffer.from(base === undefined ? '' : `,"pid":${process.pid}`);
  const writeHead = (out: LineBytes, level: 'info' | 'warn'): void => {
    out.bytes(levelBytes[level]);
    out.number(Date.now());
    out.bytes(bindingBytes);
  };
  registerJsonLineSink(logger, {
    writeInPlace(level, fill, subject) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const out = destination.beginLine();
        writeHead(out, level);
        fill(out, subject);
        const needed = out.pos;
        const result = destination.finishLine();
        if (result === 'written') return;
        if (result === 'too-long') {
          writeLongLine(destination, needed, (long) => {
            writeHead(long, level);
            fill(long, subject);
          });
          return;
        }
      }
    },
  });
  return logger;
}

/**
 * A line too long for any batch (a very long URL or error message), written into a buffer of the size the first
 * try counted (LineBytes goes on counting past its end) and then by itself. The size is counted again on each try:
 * the time and the duration may have gained a digit since.
 */
function writeLongLine(destination: LineBatcher, needed: number, fill: (out: LineBytes) => void): void {
  for (let attempt = 0; attempt < 4; attempt++) {
    const out = new LineBytes(Buffer.allocUnsafe(needed + 64));
    fill(out);
    if (!out.overflowed) {
      destination.writeLine(out.buffer.subarray(0, out.pos));
      return;
    }
    needed = out.pos;
  }
}
