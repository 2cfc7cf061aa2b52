/**
 * Reads a tunnel's origin socket through Node's `onread` option instead of as a stream, and hands every read to the
 * client socket as a copy in a reused chunk.
 *
 * Why: a stream read allocates a fresh 64 KiB buffer in C++ per read (then shrinks it to the bytes read) and wraps it
 * in a new Buffer. Reading through this instead took a quarter off tunnel bulk's CPU per MiB (docs/performance.md).
 * With `onread`, libuv reads into one buffer that every origin socket shares, which is safe because each read's
 * callback runs to completion before any other read happens and copies the bytes out before it returns. The copy goes
 * into a chunk from a small free list, and the chunk comes back when its write to the client completes: the client
 * socket may keep a write's memory until the kernel takes it, so the shared buffer itself is never written from.
 * A private 64 KiB buffer per socket (no copy) was faster still, but would have cost 64 KiB per idle tunnel.
 *
 * Only for sockets getaway dials itself: accepted client sockets cannot take `onread`, so the client-to-origin
 * direction stays a pipe.
 */
import type { OnReadOpts, Socket } from 'node:net';
import { notifyTaps, type BodyTap } from '../core/body-tap.js';

/** What Node's own stream reads ask for. */
const READ_SIZE = 65536;
/** Reads smaller than this are copied into a Buffer of their own size (Node pools those up to 4 KiB). */
const SMALL_READ = 8192;
/** Free chunks kept for reuse; more than this are left to the garbage collector. */
const MAX_FREE_CHUNKS = 32;

const sharedReadBuffer = Buffer.allocUnsafe(READ_SIZE);
const freeChunks: Buffer[] = [];

function takeChunk(): Buffer {
  return freeChunks.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
}

function returnChunk(chunk: Buffer): void {
  if (freeChunks.length < MAX_FREE_CHUNKS) freeChunks.push(chunk);
}

export class OriginReader {
  /** Given to `net.connect()` by the dialer, which then calls adopt(). */
  readonly onread: OnReadOpts;
  #origin: Socket | undefined;
  #client: Socket | undefined;
  // Made on first use, since a tunnel that only carries small reads and never waits for its client needs none of
  // them: CONNECT setup cost 3 % more CPU (bench:pair) while every tunnel allocated them up front.
  /** Chunks in the order they were written, until their writes complete. */
  #inFlight: Buffer[] | undefined;
  #written: (() => void) | undefined;
  #drained: (() => void) | undefined;
  #taps: readonly BodyTap[] | undefined;
  #onTapFailure: ((err: unknown) => void) | undefined;
  /** Tapped only: how many waits (the client's drain, a tap's promise) hold reading back. */
  #holds = 0;

  /** The socket dialled with `onread`; unset when the tunnel's route did not use it (upstream proxies). */
  get origin(): Socket | undefined {
    return this.#origin;
  }

  constructor() {
    this.onread = { buffer: sharedReadBuffer, callback: (bytes, buffer) => this.#onRead(bytes, buffer) };
  }

  /**
   * Called by the dialer with the socket it created with `onread`. Paused before it connects, so nothing is read
   * (and no EOF seen) until start(): what a server-first origin sends early waits in the kernel.
   */
  adopt(socket: Socket): void {
    this.#origin = socket;
    socket.pause();
  }

  /**
   * Starts relaying everything the origin sends to `client`. With `taps`, each read also goes to them (see
   * #onTappedRead), and reading waits for their promises as it waits for the client.
   */
  start(client: Socket, taps?: readonly BodyTap[], onTapFailure?: (err: unknown) => void): void {
    this.#client = client;
    this.#taps = taps;
    this.#onTapFailure = onTapFailure;
    this.#origin?.resume();
  }

  /** Returning false stops reading until the client drains (Node's `onread` contract). */
  #onRead(bytes: number, buffer: Uint8Array): boolean {
    const client = this.#client;
    if (client === undefined) {
      // adopt() keeps the socket paused until start(), so this means a dialer broke that contract: the bytes
      // just read have nowhere to go, and dropping them silently would corrupt the tunnel.
      this.#origin?.destroy(new Error('origin socket read before its tunnel started'));
      return false;
    }
    if (client.destroyed) return false;
    if (this.#taps !== undefined) return this.#onTappedRead(client, this.#taps, Buffer.from(buffer.subarray(0, bytes)));
    let accepted: boolean;
    if (bytes < SMALL_READ) {
      accepted = client.write(Buffer.from(buffer.subarray(0, bytes)));
    } else {
      const chunk = takeChunk();
      chunk.set(buffer.subarray(0, bytes));
      const inFlight = (this.#inFlight ??= []);
      inFlight.push(chunk);
      accepted = client.write(chunk.subarray(0, bytes), (this.#written ??= () => returnChunk(inFlight.shift()!)));
    }
    if (accepted) return true;
    client.once('drain', (this.#drained ??= () => this.#origin?.resume()));
    return false;
  }

  /**
   * A tapped tunnel gets a Buffer of its own per read, never a pooled chunk: a tap may still be reading the bytes
   * (its promise pending) after the client's write completed, when a pooled chunk would be handed to another tunnel.
   */
  #onTappedRead(client: Socket, taps: readonly BodyTap[], copy: Buffer): boolean {
    let pending: Promise<unknown> | undefined;
    try {
      pending = notifyTaps(taps, 'data', copy);
    } catch (err) {
      this.#onTapFailure?.(err);
      return false;
    }
    const release = (): void => {
      if (--this.#holds === 0) this.#origin?.resume();
    };
    if (!client.write(copy)) {
      this.#holds++;
      client.once('drain', release);
    }
    if (pending !== undefined) {
      this.#holds++;
      pending.then(release, (err: unknown) => this.#onTapFailure?.(err));
    }
    return this.#holds === 0;
  }
}
