/**
 * Two-way copy between two sockets with TCP half-close, as a CONNECT tunnel or an upgraded connection needs:
 * when one side ends its writing (FIN), the other side gets FIN too while the opposite direction keeps
 * flowing until it ends as well. Back-pressure comes from pipe() (or, for an origin read through an OriginReader,
 * from the reader waiting for 'drain'); nothing is buffered beyond the streams' own high-water marks.
 *
 *   a ──data──▶ b     a's FIN → b.end()
 *   a ◀──data── b     b's FIN → a.end()      both ended and flushed → both closed
 */
import type { Socket } from 'node:net';
import { ProxyError, toProxyError } from '../core/errors.js';
import type { OriginReader } from './origin-reader.js';

export interface SpliceOptions {
  /** Bytes already read from `a` that belong to `b` (e.g. sent together with the CONNECT head). */
  headAtoB?: Buffer;
  /** Bytes already read from `b` that belong to `a`. */
  headBtoA?: Buffer;
  /**
   * The reader `b` may have been dialled with (origin-reader.ts): if `b` is the socket it adopted, b→a goes through
   * it instead of a pipe. A route through an upstream proxy dials without it, and then `b` is piped as usual.
   */
  reader?: OriginReader;
}

export interface SpliceResult {
  aToB: number;
  bToA: number;
  /** Why it ended abnormally: reset, idle timeout, or one side destroyed while the other still had work. */
  error: ProxyError | undefined;
}

/** Idle timeouts are not the splice's: the proxy watches every open splice from one timer (idle-sweep.ts). */
export interface SpliceHandle {
  readonly done: Promise<SpliceResult>;
  /** Bytes read from either socket so far: it changes whenever the tunnel carries anything. */
  bytesMoved(): number;
  /** Ends the splice now (shutdown, idle): both sockets are destroyed and `done` resolves with `reason`. */
  abort(reason: ProxyError): void;
}

export function splice(a: Socket, b: Socket, options: SpliceOptions): SpliceHandle {
  let error: ProxyError | undefined;
  let closed = 0;
  let settle: (result: SpliceResult) => void = () => undefined;
  const done = new Promise<SpliceResult>((resolve) => {
    settle = resolve;
  });
  const startAtoB = b.bytesWritten;
  const startBtoA = a.bytesWritten;

  const destroyBoth = (reason: ProxyError | undefined): void => {
    error ??= reason;
    a.destroy();
    b.destroy();
  };
  const onError = (err: Error): void => destroyBoth(toProxyError(err, 'connection_terminated'));
  const onClose = function onClose(this: Socket): void {
    // A socket that closes before both of its directions finished was cut short: the other must go too.
    if (!(this.readableEnded && this.writableFinished)) {
      destroyBoth(error ?? new ProxyError('connection_terminated', 'one side of the tunnel closed abruptly'));
    }
    closed++;
    if (closed === 2) {
      settle({ aToB: b.bytesWritten - startAtoB, bToA: a.bytesWritten - startBtoA, error });
    }
  };

  for (const socket of [a, b]) {
    socket.on('error', onError);
    if (socket.closed) queueMicrotask(() => onClose.call(socket));
    else socket.on('close', onClose); // 'close' comes once: no once() wrapper per socket
    if (socket.errored) onError(socket.errored);
  }
  if (options.headAtoB && options.headAtoB.length > 0) b.write(options.headAtoB);
  if (options.headBtoA && options.headBtoA.length > 0) a.write(options.headBtoA);
  a.pipe(b);
  const reader = options.reader;
  if (reader?.origin !== b) {
    b.pipe(a);
    b.resume();
  } else {
    // What pipe() does for the other direction: b's FIN ends a once a's writes are flushed.
    b.once('end', () => a.end());
    reader.start(a);
  }
  a.resume();

  return {
    done,
    bytesMoved: () => a.bytesRead + b.bytesRead,
    abort(reason: ProxyError): void {
      destroyBoth(reason);
    },
  };
}
