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
  /**
   * Writes a line in place, into the destination's batch: its head (`{"level":30,"time":<epoch ms>` and the base
   * bindings, as pino writes them), then what `fill` writes for `subject`, which must end the line (`}` and the
   * newline). `fill` may be called more than once: again when the line did not fit behind the lines pending, and
   * once more into a buffer of the size it turned out to need when it fits no batch, which is then written by itself.
   */
  writeInPlace<T>(level: 'info' | 'warn', fill: (out: LineBytes, subject: T) => void, subject: T): void;
}

const sinks = new WeakMap<Logger, JsonLineSink>();

export function registerJsonLineSink(logger: Logger, sink: JsonLineSink): void {
  sinks.set(logger, sink);
}

export function jsonLineSink(logger: Logger): JsonLineSink | undefined {
  return sinks.get(logger);
}
