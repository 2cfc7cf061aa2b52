import { writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';
import { LineBytes } from './line-bytes.js';

/** The batchers to flush when the process exits: one 'exit' listener for all of them, however many loggers exist. */
const live = new Set<LineBatcher>();
let exitHookInstalled = false;

function flushAllOnExit(): void {
  for (const batcher of live) batcher.flush();
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * A pino destination that encodes lines straight into one buffer and writes it to a file descriptor when the next
 * line would not fit, and at most `maxDelayMs` after a batch's first line. On the development VM a flow log line
 * written by itself (pino's sonic-boom destination, one write(2) per line, to /dev/null) cost 17 % of a keep-alive
 * request's CPU; building the line was under half of that, the rest was flattening and encoding the string again
 * and the system call (docs/performance.md, "Where the flow log's cost goes"). sonic-boom's own buffering (`minLength`) does not help: it takes
 * Buffer.byteLength of the whole pending string on every write, flattening it each time.
 *
 * A batch is at most `maxBytes` (4096 unless given). Where cluster workers share a pipe, that must stay PIPE_BUF
 * (4096 bytes), so each write is atomic and whole lines from different processes never splice; a longer line is
 * written by itself. A line after a quiet spell is written at once, so a lightly used proxy shows every line as it
 * happens. Pending lines are written on the
 * 'exit' event (process.exit, an uncaught exception, the loop running dry); only a process killed outright
 * (SIGKILL) loses its last `maxDelayMs` of lines. Writes are synchronous, as sonic-boom's sync mode is: a full pipe
 * (EAGAIN) is waited out, so a log reader that stops reading stalls the proxy rather than letting lines pile up in
 * memory. If the descriptor fails (EPIPE: the reader is gone), lines are dropped and the proxy keeps serving.
 */
export class LineBatcher implements DestinationStream {
  readonly #fd: number;
  /** The batch being filled: its buffer, and in `pos` the bytes used. */
  readonly #out: LineBytes;
  readonly #maxDelayMs: number;
  #lineStart = 0;
  #lastWrite = 0;
  #failed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.flush();
  };

  constructor(fd: number, options: { maxBytes?: number; maxDelayMs?: number } = {}) {
    this.#fd = fd;
    this.#out = new LineBytes(Buffer.allocUnsafe(options.maxBytes ?? 4096));
    this.#maxDelayMs = options.maxDelayMs ?? 100;
    live.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', flushAllOnExit);
    }
  }

  write(line: string): boolean {
    const quietSpell = this.#out.pos === 0 && Date.now() - this.#lastWrite >= this.#maxDelayMs;
    const room = this.#out.buffer.length - this.#out.pos;
    // A UTF-16 unit is at most 3 bytes of UTF-8, so most lines are known to fit without counting their bytes.
    if (line.length * 3 > room && Buffer.byteLength(line) > room) {
      this.flush();
      if (Buffer.byteLength(line) > this.#out.buffer.length) {
        this.writeLine(Buffer.from(line));
        return true;
      }
    }
    this.#out.pos += this.#out.buffer.write(line, this.#out.pos);
    this.#lineWritten(quietSpell);
    return true;
  }

  /** Writes one whole line (its bytes, ending in a newline) by itself, after what is pending: for lines no batch holds. */
  writeLine(bytes: Uint8Array): void {
    this.flush();
    this.#lastWrite = Date.now();
    this.#writeAll(bytes);
  }

  /**
   * Starts a line written in place: the caller writes it into the returned LineBytes, then calls finishLine(). For
   * callers that would otherwise build the line as a string only to have write() encode it (the flow log).
   */
  beginLine(): LineBytes {
    this.#lineStart = this.#out.pos;
    return this.#out;
  }

  /**
   * Ends the line begun by beginLine(): 'written'; 'retry' when it did not fit behind the lines pending (they were
   * written out, and the batch is empty for a second try); 'too-long' when it does not fit a batch at all, and the
   * caller writes it with writeLine() instead. Nothing of a line that did not fit stays in the batch.
   */
  finishLine(): 'written' | 'retry' | 'too-long' {
    const out = this.#out;
    if (out.overflowed) {
      const first = this.#lineStart === 0;
      out.pos = this.#lineStart;
      if (first) return 'too-long';
      this.flush();
      return 'retry';
    }
    this.#lineWritten(this.#lineStart === 0 && Date.now() - this.#lastWrite >= this.#maxDelayMs);
    return 'written';
  }

  #lineWritten(quietSpell: boolean): void {
    if (quietSpell) this.flush();
    else if (this.#timer === undefined) this.#timer = setTimeout(this.#onTimer, this.#maxDelayMs).unref();
  }

  /** Writes what is pending now (pino's `logger.flush()` calls it too). */
  flush(callback?: (err?: Error) => void): void {
    if (this.#out.pos > 0) {
      const used = this.#out.pos;
      this.#out.pos = 0;
      this.#lastWrite = Date.now();
      this.#writeAll(this.#out.buffer.subarray(0, used));
    }
    callback?.();
  }

  /** Flushes, and stops the timer and the exit hook's hold on this batcher. */
  close(): void {
    this.flush();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    live.delete(this);
  }

  #writeAll(bytes: Uint8Array): void {
    let offset = 0;
    while (!this.#failed && offset < bytes.length) {
      try {
        offset += writeSync(this.#fd, bytes, offset, bytes.length - offset);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EBUSY') Atomics.wait(pause, 0, 0, 5);
        else this.#failed = true;
      }
    }
  }
}
