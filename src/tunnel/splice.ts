/**
 * Two-way copy between two sockets with TCP half-close, as a CONNECT tunnel or an upgraded connection needs:
 * when one side ends its writing (FIN), the other side gets FIN too while the opposite direction keeps
 * flowing until it ends as well. Each direction is read through a ReadRelay where its socket allows (the origin
 * dialled with `onread`, the client's accepted socket switched over), otherwise piped; back-pressure is the
 * relay's wait for 'drain' or pipe()'s, and nothing is buffered beyond the streams' own high-water marks.
 *
 *   a ──data──▶ b     a's FIN → b.end()
 *   a ◀──data── b     b's FIN → a.end()      both ended and flushed → both closed
 */
import type { Socket } from 'node:net';
import { ProxyError, toProxyError } from '../core/errors.js';
import { abortTaps, notifyTaps, type BodyTap } from '../core/body-tap.js';
import { ReadRelay } from './read-relay.js';

/**
 * Tells the taps of bytes that need no holding back (those that came before the splice, with the CONNECT head or
 * the 101: they are here already) or of the end; a tap's failure, now or later, goes to `onFailure`.
 */
function tellTaps(taps: readonly BodyTap[], onFailure: (err: unknown) => void, event: 'data' | 'end', chunk?: Buffer): void {
  try {
    notifyTaps(taps, event, chunk)?.catch(onFailure);
  } catch (err) {
    onFailure(err);
  }
}

/**
 * pipe() with taps: each chunk goes to the taps and to the destination, and reading pauses until the destination
 * drained and every tap's promise settled. The source's FIN ends the destination (half-close, as pipe() does)
 * and gives the taps `end`.
 */
function tappedPipe(source: Socket, destination: Socket, taps: readonly BodyTap[], onFailure: (err: unknown) => void): void {
  let waits = 0;
  const release = (): void => {
    if (--waits === 0 && !source.destroyed) source.resume();
  };
  const hold = (): void => {
    if (waits++ === 0) source.pause();
  };
  source.on('data', (chunk: Buffer) => {
    let pending: Promise<unknown> | undefined;
    try {
      pending = notifyTaps(taps, 'data', chunk);
    } catch (err) {
      onFailure(err);
      return;
    }
    if (!destination.write(chunk)) {
      hold();
      destination.once('drain', release);
    }
    if (pending !== undefined) {
      hold();
      pending.then(release, onFailure);
    }
  });
  source.once('end', () => {
    destination.end();
    tellTaps(taps, onFailure, 'end');
  });
}


export interface SpliceOptions {
  /** Bytes already read from `a` that belong to `b` (e.g. sent together with the CONNECT head). */
  headAtoB?: Buffer;
  /** Bytes already read from `b` that belong to `a`. */
  headBtoA?: Buffer;
  /**
   * The reader `b` may have been dialled with (read-relay.ts): if `b` is the socket it adopted, b→a goes through
   * it instead of a pipe. A route through an upstream proxy dials without it, and then `b` is piped as usual.
   */
  reader?: ReadRelay;
  /** Body taps per direction (tunnel and upgrade bytes): a tapped direction is copied by tappedPipe, not pipe(). */
  tapsAtoB?: readonly BodyTap[] | undefined;
  tapsBtoA?: readonly BodyTap[] | undefined;
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

/**
 * a→b, a being the accepted client socket: read through a ReadRelay once a is switched to it, piped where it cannot
 * be (a TLS socket), and b ended when a ends, as pipe() would.
 */
function copyAtoB(a: Socket, b: Socket, taps: readonly BodyTap[] | undefined, tapFailed: (err: unknown) => void): void {
  const end = (): void => {
    b.end();
    if (taps !== undefined) tellTaps(taps, tapFailed, 'end');
  };
  // A client that sent its FIN with the CONNECT has had its 'end' already: nothing more will come from it.
  if (a.readableEnded) return end();
  const relay = new ReadRelay();
  if (!relay.adoptAccepted(a)) {
    if (taps === undefined) a.pipe(b);
    else tappedPipe(a, b, taps, tapFailed);
    return;
  }
  // What the stream read before the switch (a PROXY protocol or first-bytes peek put back) goes first.
  const buffered = a.readableLength > 0 ? (a.read() as Buffer | null) : null;
  if (buffered !== null) {
    if (taps !== undefined) tellTaps(taps, tapFailed, 'data', buffered);
    b.write(buffered);
  }
  a.on('end', end); // 'end' comes once: no once() wrapper (an object and a bound function per tunnel)
  relay.start(b, taps, tapFailed);
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
  const { tapsAtoB, tapsBtoA } = options;
  const tapFailed = (err: unknown): void => destroyBoth(toProxyError(err, 'proxy_internal_error'));
  if (options.headAtoB && options.headAtoB.length > 0) {
    if (tapsAtoB !== undefined) tellTaps(tapsAtoB, tapFailed, 'data', options.headAtoB);
    b.write(options.headAtoB);
  }
  if (options.headBtoA && options.headBtoA.length > 0) {
    if (tapsBtoA !== undefined) tellTaps(tapsBtoA, tapFailed, 'data', options.headBtoA);
    a.write(options.headBtoA);
  }
  copyAtoB(a, b, tapsAtoB, tapFailed);
  const reader = options.reader;
  if (reader?.source === b) {
    // What pipe() does for the other direction: b's FIN ends a once a's writes are flushed.
    b.on('end', () => {
      a.end();
      if (tapsBtoA !== undefined) tellTaps(tapsBtoA, tapFailed, 'end');
    });
    reader.start(a, tapsBtoA, tapFailed);
  } else if (tapsBtoA !== undefined) {
    tappedPipe(b, a, tapsBtoA, tapFailed);
    b.resume();
  } else {
    b.pipe(a);
    b.resume();
  }
  a.resume();

  if (tapsAtoB !== undefined || tapsBtoA !== undefined) {
    // Taps that saw neither end nor a failure by the time both sockets closed saw a cut-short stream.
    void done.then((result) => {
      const reason = result.error ?? new ProxyError('connection_terminated', 'the connection closed before this direction ended');
      abortTaps(tapsAtoB, reason);
      abortTaps(tapsBtoA, reason);
    });
  }
  return {
    done,
    bytesMoved: () => a.bytesRead + b.bytesRead,
    abort(reason: ProxyError): void {
      destroyBoth(reason);
    },
  };
}
