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
import type { ConnectionPlace } from '../core/runtime.js';
import { abortTaps, notifyTaps, type BodyTap } from '../core/body-tap.js';
import { ReadRelay } from './read-relay.js';
import { takeTunnel } from './kernel-splice.js';

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
  /** False keeps the copy in JavaScript even where the kernel could do it (the `kernelSplice` option). */
  kernel?: boolean;
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
  /** Whether the kernel moves this splice's bytes (kernel-splice.ts) or JavaScript copies them (this file). */
  readonly inKernel: boolean;
  /** Bytes read from either socket so far: it changes whenever the tunnel carries anything. */
  bytesMoved(): number;
  /** Ends the splice now (shutdown, idle): both sockets are destroyed and `done` resolves with `reason`. */
  abort(reason: ProxyError): void;
  /**
   * Only where the kernel moves the bytes: lets go of both Socket objects for the rest of the tunnel and takes
   * their `places` in the counts of open connections (kernel-splice.ts says how).
   */
  retireSockets?(places: readonly (ConnectionPlace | undefined)[]): void;
}

/**
 * Which splice a socket is in, for the listeners all splices share (Splice says why they are shared). Its values hold
 * their keys, which would keep dead sockets alive through scavenges (client-admission.ts, placeKey): every entry is
 * deleted when its splice ends, before its socket can die.
 */
const spliceOf = new WeakMap<Socket, Splice>();

/**
 * One splice's state, with the socket listeners every splice shares (static, finding their splice by socket) instead
 * of a closure per listener per tunnel: an idle tunnel is mostly this state, and the closures and their context
 * were about 0.5 KiB of it (`npm run bench:idle-heap`).
 */
class Splice implements SpliceHandle {
  get inKernel(): boolean {
    return false;
  }

  readonly done: Promise<SpliceResult>;
  readonly #a: Socket;
  readonly #b: Socket;
  readonly #startAtoB: number;
  readonly #startBtoA: number;
  readonly #tapsAtoB: readonly BodyTap[] | undefined;
  readonly #tapsBtoA: readonly BodyTap[] | undefined;
  /** Only made when a direction is tapped: where a tap's failure goes. */
  readonly #tapFailed: ((err: unknown) => void) | undefined;
  #settle: (result: SpliceResult) => void = () => undefined;
  #error: ProxyError | undefined;
  #closed = 0;

  constructor(a: Socket, b: Socket, tapsAtoB: readonly BodyTap[] | undefined, tapsBtoA: readonly BodyTap[] | undefined) {
    this.#a = a;
    this.#b = b;
    this.done = new Promise<SpliceResult>((resolve) => {
      this.#settle = resolve;
    });
    this.#startAtoB = b.bytesWritten;
    this.#startBtoA = a.bytesWritten;
    this.#tapsAtoB = tapsAtoB;
    this.#tapsBtoA = tapsBtoA;
    if (tapsAtoB !== undefined || tapsBtoA !== undefined) {
      this.#tapFailed = (err: unknown): void => this.#destroyBoth(toProxyError(err, 'proxy_internal_error'));
    }
    spliceOf.set(a, this);
    spliceOf.set(b, this);
  }

  /** Starts both directions. The heads and the reader are used here once, not kept for the tunnel's life. */
  run(options: SpliceOptions): void {
    const a = this.#a;
    const b = this.#b;
    for (const socket of [a, b]) {
      socket.on('error', Splice.#onError);
      if (socket.closed) queueMicrotask(() => this.#onClose(socket));
      else socket.on('close', Splice.#onSocketClose); // 'close' comes once: no once() wrapper per socket
      if (socket.errored) this.#destroyBoth(toProxyError(socket.errored, 'connection_terminated'));
    }
    const tapsAtoB = this.#tapsAtoB;
    const tapsBtoA = this.#tapsBtoA;
    const tapFailed = this.#tapFailed!;
    if (options.headAtoB && options.headAtoB.length > 0) {
      if (tapsAtoB !== undefined) tellTaps(tapsAtoB, tapFailed, 'data', options.headAtoB);
      b.write(options.headAtoB);
    }
    if (options.headBtoA && options.headBtoA.length > 0) {
      if (tapsBtoA !== undefined) tellTaps(tapsBtoA, tapFailed, 'data', options.headBtoA);
      a.write(options.headBtoA);
    }
    this.#copyAtoB();
    const reader = options.reader;
    if (reader?.source === b) {
      // What pipe() does for the other direction: b's FIN ends a once a's writes are flushed.
      b.on('end', Splice.#onEnd); // 'end' comes once, as 'close' does
      reader.start(a, tapsBtoA, this.#tapFailed);
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
      void this.done.then((result) => {
        const reason = result.error ?? new ProxyError('connection_terminated', 'the connection closed before this direction ended');
        abortTaps(tapsAtoB, reason);
        abortTaps(tapsBtoA, reason);
      });
    }
  }

  bytesMoved(): number {
    return this.#a.bytesRead + this.#b.bytesRead;
  }

  abort(reason: ProxyError): void {
    this.#destroyBoth(reason);
  }

  /**
   * a→b, a being the accepted client socket: read through a ReadRelay once a is switched to it, piped where it
   * cannot be (a TLS socket), and b ended when a ends, as pipe() would.
   */
  #copyAtoB(): void {
    const a = this.#a;
    const b = this.#b;
    const taps = this.#tapsAtoB;
    // A client that sent its FIN with the CONNECT has had its 'end' already: nothing more will come from it.
    if (a.readableEnded) return this.#ended(a);
    const relay = new ReadRelay();
    if (!relay.adoptAccepted(a)) {
      if (taps === undefined) a.pipe(b);
      else tappedPipe(a, b, taps, this.#tapFailed!);
      return;
    }
    // What the stream read before the switch (a PROXY protocol or first-bytes peek put back) goes first.
    const buffered = a.readableLength > 0 ? (a.read() as Buffer | null) : null;
    if (buffered !== null) {
      if (taps !== undefined) tellTaps(taps, this.#tapFailed!, 'data', buffered);
      b.write(buffered);
    }
    a.on('end', Splice.#onEnd);
    relay.start(b, taps, this.#tapFailed);
  }

  /** `from` sent its FIN: the other socket gets one once its writes are flushed, and that direction's taps `end`. */
  #ended(from: Socket): void {
    const toB = from === this.#a;
    (toB ? this.#b : this.#a).end();
    const taps = toB ? this.#tapsAtoB : this.#tapsBtoA;
    if (taps !== undefined) tellTaps(taps, this.#tapFailed!, 'end');
  }

  #destroyBoth(reason: ProxyError | undefined): void {
    this.#error ??= reason;
    this.#a.destroy();
    this.#b.destroy();
  }

  #onClose(socket: Socket): void {
    // A socket that closes before both of its directions finished was cut short: the other must go too.
    if (!(socket.readableEnded && socket.writableFinished)) {
      this.#destroyBoth(this.#error ?? new ProxyError('connection_terminated', 'one side of the tunnel closed abruptly'));
    }
    if (++this.#closed === 2) {
      spliceOf.delete(this.#a);
      spliceOf.delete(this.#b);
      this.#settle({ aToB: this.#b.bytesWritten - this.#startAtoB, bToA: this.#a.bytesWritten - this.#startBtoA, error: this.#error });
    }
  }

  static #onError(this: Socket, err: Error): void {
    const splice = spliceOf.get(this);
    if (splice !== undefined) splice.#destroyBoth(toProxyError(err, 'connection_terminated'));
  }

  static #onSocketClose(this: Socket): void {
    const splice = spliceOf.get(this);
    if (splice !== undefined) splice.#onClose(this);
  }

  static #onEnd(this: Socket): void {
    const splice = spliceOf.get(this);
    if (splice !== undefined) splice.#ended(this);
  }
}

/**
 * Starts copying both ways. An untapped tunnel between two plain TCP sockets is handed to the kernel where the
 * native module is built (kernel-splice.ts) unless `kernel` is false; everything else is copied here.
 */
export function splice(a: Socket, b: Socket, options: SpliceOptions): SpliceHandle {
  if (options.kernel !== false && options.tapsAtoB === undefined && options.tapsBtoA === undefined) {
    const taken = takeTunnel(a, b, options.headAtoB, options.headBtoA);
    if (taken !== undefined) {
      if ('handle' in taken) return taken.handle;
      // Refused after it took the streams' buffered bytes out: they go first here instead.
      options = { ...options, headAtoB: taken.early[0], headBtoA: taken.early[1] };
    }
  }
  const handle = new Splice(a, b, options.tapsAtoB, options.tapsBtoA);
  handle.run(options);
  return handle;
}
