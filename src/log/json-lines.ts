import type { Logger } from 'pino';
import type { LineBytes } from './line-bytes.js';

/**
 * A way past pino's per-call work for a caller that builds its own line, which the flow log does once per request:
 * building a record object and walking it generically (type checks, escaping, joins) was about half of the 17 % the
 * line cost a keep-alive request (docs/performance.md). Only loggers made by createLogger have one: their output is
 * known to be pino's plain JSON (no serializers, redaction, mixins, formatters or transports), so a line built by
 * hand can be the bytes pino would write. Any other logger, such as a library user's own, takes the ordinary pino
 * call with all of that applied.
 */
export interface JsonLineSink {
  /** The start of a line at this level, as pino writes it: `{"level":30,"time":<epoch ms>` and the base bindings. */
  head(level: 'info' | 'warn'): string;
  /** Writes one whole line (ending in a newline) to the logger's destination. */
  write(line: string): void;
  /**
   * Writes a line in place, into the destination's batch: its head (as head() gives it), then what `fill` writes
   * for `subject`, which must end the line (`}` and the newline). `fill` may be called twice (the line did not fit
   * behind the lines pending). False, with nothing written, for a line too long for a batch: write() it instead.
   */
  writeInPlace<T>(level: 'info' | 'warn', fill: (out: LineBytes, subject: T) => void, subject: T): boolean;
}

const sinks = new WeakMap<Logger, JsonLineSink>();

export function registerJsonLineSink(logger: Logger, sink: JsonLineSink): void {
  sinks.set(logger, sink);
}

export function jsonLineSink(logger: Logger): JsonLineSink | undefined {
  return sinks.get(logger);
}

// What JSON.stringify escapes in a string: control characters, the quote, the backslash and (as lone surrogates)
// anything in the surrogate range; a string with none of them is its own JSON body.
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** The JSON text of a string, byte-identical to JSON.stringify's, without its cost for the common plain string. */
export function jsonString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}
