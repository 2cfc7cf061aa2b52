/**
 * Reads one socket of a tunnel through Node's `onread` instead of as a stream, and hands every read to the other
 * socket as a copy in a reused chunk: the origin socket of a CONNECT tunnel (dialled with `onread`), and the
 * client's accepted socket, which is switched over once the tunnel starts (adoptAccepted).
 *
 * Why: a stream read allocates a fresh 64 KiB buffer in C++ per read (then shrinks it to the bytes read) and wraps it
 * in a new Buffer. Reading through this instead took a quarter off tunnel bulk's CPU per MiB (docs/performance.md).
 * With `onread`, libuv reads into one buffer that every relayed socket shares, which is safe because each read's
 * callback runs to completion before any other read happens and copies the bytes out before it returns. The copy goes
 * into a chunk from a small free list, and the chunk comes back when its write to the destination completes: a
 * socket may keep a write's memory until the kernel takes it, so the shared buffer itself is never written from.
 * A private 64 KiB buffer per socket (no copy) was faster still, but would have cost 64 KiB per idle tunnel.
 */
import { Socket, type OnReadOpts } from 'node:net';
import { notifyTaps, type BodyTap } from '../core/body-tap.js';
import { returnChunk, sharedReadBuffer, SMALL_READ, takeChunk } from '../core/shared-read-buffer.js';


interface UserBufferSlots {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

/**
 * Where a net.Socket keeps its `onread` settings. Node offers `onread` only to sockets it creates for connect(),
 * but reads any socket through them once they are set and its handle was told (useUserBuffer), which is all the
 * option does for a new socket. The slots are private symbols, found here on a probe socket by the values given
 * to it; if this Node keeps them differently, accepted sockets simply stay streams.
 */
function findUserBufferSlots(): UserBufferSlots | undefined {
  const buffer = Buffer.alloc(1);
  const callback = (): boolean => true;
  // The constructor takes `onread` as net.connect() does (connect() passes its options on); the types list it there only.
  const probe = new Socket({ onread: { buffer, callback } } as ConstructorParameters<typeof Socket>[0]);
  const probeSlots = probe as unknown as Record<symbol, unknown>;
  const symbols = Object.getOwnPropertySymbols(probe);
  probe.destroy();
  const bufferSlot = symbols.find((symbol) => probeSlots[symbol] === buffer);
  const callbackSlot = symbols.find((symbol) => probeSlots[symbol] === callback);
  // Read on every read when set; it must exist and be null, or onStreamRead would call it.
  const generatorSlot = symbols.find((symbol) => symbol.description === 'kBufferGen' && probeSlots[symbol] === null);
  if (bufferSlot === undefined || callbackSlot === undefined || generatorSlot === undefined) return undefined;
  return { buffer: bufferSlot, callback: callbackSlot, generator: generatorSlot };
}

let userBufferSlots: UserBufferSlots | undefined | null = null;

/** The part of Node's stream handle (TCPWrap) this uses. */
interface UserBufferHandle {
  useUserBuffer?: (buffer: Uint8Array) => void;
}

export class ReadRelay {
  /** Given to `net.connect()` by the dialer, which then calls adopt(). */
  readonly onread: OnReadOpts;
  #source: Socket | undefined;
  #destination: Socket | undefined;
  // Made on first use, since a tunnel that only carries small reads and never waits for its destination needs none of
  // them: CONNECT setup cost 3 % more CPU (bench:pair) while every tunnel allocated them up front.
  /** Chunks in the order they were written, until their writes complete. */
  #inFlight: Buffer[] | undefined;
  #written: (() => void) | undefined;
  #drained: (() => void) | undefined;
  #taps: readonly BodyTap[] | undefined;
  #onTapFailure: ((err: unknown) => void) | undefined;
  /** Tapped only: how many waits (the destination's drain, a tap's promise) hold reading back. */
  #holds = 0;

  /** The socket read through `onread`; unset when the tunnel's route did not use it (upstream proxies). */
  get source(): Socket | undefined {
    return this.#source;
  }

  constructor() {
    this.onread = { buffer: sharedReadBuffer, callback: (bytes, buffer) => this.#onRead(bytes, buffer) };
  }

  /**
   * Called by the dialer with the socket it created with `onread`. Paused before it connects, so nothing is read
   * (and no EOF seen) until start(): what a server-first origin sends early waits in the kernel.
   */
  adopt(socket: Socket): void {
    this.#source = socket;
    socket.pause();
  }

  /**
   * Switches a socket Node created without `onread` (an accepted client connection) to this relay's reads, and
   * adopts it. False, and the socket untouched, where that cannot be done: TLS sockets (their reads are the TLS
   * layer's), sockets with their own `onread`, a Node whose internals differ. Bytes the stream already buffered
   * are not seen by the relay: the caller reads them out (readableLength) before start().
   */
  adoptAccepted(socket: Socket): boolean {
    if (userBufferSlots === null) userBufferSlots = findUserBufferSlots();
    const slots = userBufferSlots;
    const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
    const settings = socket as unknown as Record<symbol, unknown>;
    if (slots === undefined || 'encrypted' in socket || typeof handle?.useUserBuffer !== 'function') return false;
    if (settings[slots.buffer] !== null || settings[slots.generator] !== null) return false;
    settings[slots.buffer] = this.onread.buffer;
    settings[slots.callback] = this.onread.callback;
    handle.useUserBuffer(this.onread.buffer as Uint8Array);
    this.adopt(socket);
    return true;
  }

  /**
   * Starts relaying everything the source sends to `destination`. With `taps`, each read also goes to them (see
   * #onTappedRead), and reading waits for their promises as it waits for the destination.
   */
  start(destination: Socket, taps?: readonly BodyTap[], onTapFailure?: (err: unknown) => void): void {
    this.#destination = destination;
    this.#taps = taps;
    this.#onTapFailure = onTapFailure;
    this.#source?.resume();
  }

  /** Returning false stops reading until the destination drains (Node's `onread` contract). */
  #onRead(bytes: number, buffer: Uint8Array): boolean {
    const destination = this.#destination;
    if (destination === undefined) {
      // adopt() keeps the socket paused until start(), so this means a dialer broke that contract: the bytes
      // just read have nowhere to go, and dropping them silently would corrupt the tunnel.
      this.#source?.destroy(new Error('socket read before its tunnel started'));
      return false;
    }
    if (destination.destroyed) return false;
    if (this.#taps !== undefined) return this.#onTappedRead(destination, this.#taps, Buffer.from(buffer.subarray(0, bytes)));
    let accepted: boolean;
    if (bytes < SMALL_READ) {
      accepted = destination.write(Buffer.from(buffer.subarray(0, bytes)));
    } else {
      const chunk = takeChunk(bytes);
      chunk.set(buffer.subarray(0, bytes));
      const inFlight = (this.#inFlight ??= []);
      inFlight.push(chunk);
      accepted = destination.write(chunk.subarray(0, bytes), (this.#written ??= () => returnChunk(inFlight.shift()!)));
    }
    if (accepted) return true;
    destination.once('drain', (this.#drained ??= () => this.#source?.resume()));
    return false;
  }

  /**
   * A tapped tunnel gets a Buffer of its own per read, never a pooled chunk: a tap may still be reading the bytes
   * (its promise pending) after the destination's write completed, when a pooled chunk would be handed to another tunnel.
   */
  #onTappedRead(destination: Socket, taps: readonly BodyTap[], copy: Buffer): boolean {
    let pending: Promise<unknown> | undefined;
    try {
      pending = notifyTaps(taps, 'data', copy);
    } catch (err) {
      this.#onTapFailure?.(err);
      return false;
    }
    const release = (): void => {
      if (--this.#holds === 0) this.#source?.resume();
    };
    if (!destination.write(copy)) {
      this.#holds++;
      destination.once('drain', release);
    }
    if (pending !== undefined) {
      this.#holds++;
      pending.then(release, (err: unknown) => this.#onTapFailure?.(err));
    }
    return this.#holds === 0;
  }
}
