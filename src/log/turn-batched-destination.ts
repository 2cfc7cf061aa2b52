/** What the batched lines are handed to: pino's synchronous SonicBoom, which retries EAGAIN and partial writes. */
export interface LineSink {
  write(chunk: string): unknown;
  flushSync(): void;
}

/**
 * A pino destination that gathers the lines logged during one turn of the event loop and writes them together,
 * with one synchronous write, when the turn ends (setImmediate).
 *
 * Why not pino's asynchronous destination: it hands each line to libuv's thread pool (fs.write), and with lines
 * coming one or two per turn, as under a proxy's load, every line paid a thread-pool round trip (`strace -f -c`
 * of a loaded proxy showed futex calls and libuv's eventfd write and read per line, gone with
 * `--log-level warn`). Against it `npm run bench:pair` read 0.96 on keep-alive and on CONNECT setup. Why not pino's synchronous destination: one write system call per line.
 * Here a busy turn costs one write and a quiet proxy's line still appears at once, not when a buffer fills.
 *
 * `maxWriteBytes` bounds one write at line boundaries: cluster workers share one pipe, and only writes of at most
 * PIPE_BUF (4096 on Linux) bytes are atomic on a pipe, so lines from several processes never splice into each
 * other. A single line longer than the bound is written alone.
 *
 * The write is synchronous, as with pino's default destination: a log reader that stops reading stalls the proxy
 * rather than letting unwritten lines grow without bound in its memory.
 */
export class TurnBatchedDestination {
  readonly #sink: LineSink;
  readonly #maxWriteBytes: number;
  #pending = '';
  #pendingBytes = 0;
  #scheduled = false;
  readonly #flushAtTurnEnd = (): void => {
    this.#scheduled = false;
    process.off('exit', this.#flushAtExit);
    this.#writePending();
  };
  // Registered from a turn's first line to its end, so a process that exits in the middle of a turn
  // (process.exit, an uncaught exception) still writes the turn's lines, and idle destinations hold no listener.
  readonly #flushAtExit = (): void => this.#writePending();

  constructor(sink: LineSink, maxWriteBytes = 65536) {
    this.#sink = sink;
    this.#maxWriteBytes = maxWriteBytes;
  }

  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.#pendingBytes + bytes > this.#maxWriteBytes) this.#writePending();
    this.#pending += line;
    this.#pendingBytes += bytes;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushAtTurnEnd);
      process.on('exit', this.#flushAtExit);
    }
    return true;
  }

  /** Writes what this turn gathered now; for exit paths, where no later turn comes. */
  flushSync(): void {
    this.#writePending();
    this.#sink.flushSync();
  }

  /** pino's logger.flush(callback) calls this. */
  flush(callback?: (err?: Error) => void): void {
    this.flushSync();
    callback?.();
  }

  #writePending(): void {
    if (this.#pending.length === 0) return;
    const chunk = this.#pending;
    this.#pending = '';
    this.#pendingBytes = 0;
    this.#sink.write(chunk);
  }
}
