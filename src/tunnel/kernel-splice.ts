/**
 * Bytes the kernel moves (native/kernel_splice.c: splice(2) through a pipe, as Go's io.Copy does between TCP
 * connections), for the common cases, where nothing needs to see them:
 * - takeTunnel(): a tunnel between two plain TCP sockets with no taps and nothing queued. Node stops reading both
 *   sockets, the native side polls their descriptors on Node's loop, and the sockets are destroyed when it finishes
 *   or is stopped. Half-close, byte counts, the idle sweep and abort work as in splice.ts. Meanwhile the sockets
 *   do without their handles (see KernelSplice), so nothing but this file can close a descriptor being polled. A
 *   CONNECT tunnel then lets go of the Socket objects altogether (KernelSplice.retireSockets()).
 * - takeBody(): the rest of one body of known length, one way (http/origin-exchange.ts): a response's from the origin
 *   socket to the client's, a request's from the client socket to the origin's. Node stops reading the source
 *   socket only, and both sockets stay open for Node afterwards.
 *
 * Where the module was not built (not Linux, no compiler at install) or a socket cannot be handed over, both answer
 * undefined and the caller copies in JavaScript as before.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import type { Socket } from 'node:net';
import { ProxyError, toProxyError } from '../core/errors.js';
import type { ConnectionPlace, OpenConnection } from '../core/runtime.js';
import type { SpliceHandle, SpliceResult } from './splice.js';

/** The native handle: an opaque value only the module reads. */
type NativeHandle = object;

/** What the native side calls, as `this`, when a tunnel or transfer finishes on its own (errno, or undefined when whole). */
interface NativeReceiver {
  nativeFinished(errno: number | undefined): void;
}

interface NativeKernelSplice {
  start(fdA: number, fdB: number, earlyAtoB: Buffer | null, earlyBtoA: Buffer | null, receiver: NativeReceiver): NativeHandle;
  transfer(fdFrom: number, fdTo: number, early: Buffer | null, length: number, receiver: NativeReceiver): NativeHandle;
  stop(handle: NativeHandle): void;
  counts(handle: NativeHandle): [aToB: number, bToA: number];
  moved(handle: NativeHandle): number;
  writerBlocked(handle: NativeHandle): boolean;
  setFinishCallback(callback: (this: NativeReceiver, errno: number | undefined) => void): void;
}

/** The part of Node's TCP handle this uses: its descriptor, how Node's own net.Socket#pause() stops reads, close. */
interface StreamHandle {
  fd?: number;
  reading?: boolean;
  readStop?: () => number;
  close?: () => void;
}

/** Where a net.Socket keeps its handle (not in its types). */
interface HandleSlot {
  _handle: StreamHandle | null;
}

/**
 * The key under which Node's handle points back at its socket (Node's internal `owner_symbol`), found on the first
 * handle: null where it is not there, and then a retired socket stays reachable through its handle (only memory).
 */
let ownerKey: symbol | null | undefined;

function forgetOwner(handle: StreamHandle): void {
  ownerKey ??= Object.getOwnPropertySymbols(handle).find((key) => key.description === 'owner_symbol') ?? null;
  if (ownerKey !== null) (handle as Record<symbol, unknown>)[ownerKey] = undefined;
}

const ADDON = '../../../build/Release/getaway_kernel_splice.node';

let native: NativeKernelSplice | null | undefined;

function loadNative(): NativeKernelSplice | null {
  if (native !== undefined) return native;
  native = null;
  if (process.platform !== 'linux') return native;
  const path = fileURLToPath(new URL(ADDON, import.meta.url));
  if (!existsSync(path)) return native;
  try {
    const loaded = createRequire(import.meta.url)(path) as NativeKernelSplice;
    loaded.setFinishCallback(function onNativeFinish(this: NativeReceiver, errno: number | undefined) {
      this.nativeFinished(errno);
    });
    native = loaded;
  } catch {
    // A module built for another Node's ABI, or a broken build: tunnels copy in JavaScript, as without it.
    native = null;
  }
  return native;
}

/** Whether tunnels can be handed to the kernel in this process (the native module loaded). */
export function isKernelSpliceAvailable(): boolean {
  return loadNative() !== null;
}

/**
 * Node's handle of a socket that may be handed over: plain TCP (a TLS socket's bytes are the TLS layer's), open,
 * connected, not ended by us, with nothing waiting to be written. Anything else stays with the JavaScript copy.
 * A FIN Node already read is no obstacle: a TCP socket reads as ended again, so the kernel copy sees it too.
 */
function handleOf(socket: Socket): StreamHandle | undefined {
  if ('encrypted' in socket || socket.destroyed || socket.connecting || socket.writableEnded) return undefined;
  if (socket.writableLength > 0) return undefined;
  const handle = (socket as unknown as Partial<HandleSlot>)._handle;
  if (typeof handle?.fd !== 'number' || handle.fd < 0 || typeof handle.readStop !== 'function' || typeof handle.close !== 'function') return undefined;
  return handle;
}

/** What the stream read and holds for its reader, taken out (Buffer) so it can go first. */
function takeBuffered(socket: Socket): Buffer | null {
  return socket.readableLength > 0 ? (socket.read() as Buffer | null) : null;
}

/** Stops Node's reads on the handle, as net.Socket#pause() does for sockets read through `onread`. */
function stopReading(socket: Socket, handle: StreamHandle): void {
  socket.pause();
  handle.reading = false;
  handle.readStop!();
}

function joined(first: Buffer | undefined, second: Buffer | null): Buffer | null {
  if (first === undefined || first.length === 0) return second;
  return second === null ? first : Buffer.concat([first, second]);
}

/** The errno a native copy ended with, as an Error with its code, for toProxyError(). */
function errnoError(errno: number): Error {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`kernel copy failed: ${code}`), { code });
}

/**
 * Which kernel tunnel a socket belongs to, for the 'close' listener every such socket shares. Its values hold their
 * keys (see splice.ts's spliceOf): every entry is deleted when the tunnel ends or retires its sockets.
 */
const kernelSpliceOf = new WeakMap<Socket, KernelSplice>();

/**
 * A tunnel the native side moves. While it does, both sockets are without their handles (`_handle` is null, as for
 * a socket not yet connected): the native side polls the descriptors themselves, and a descriptor closed under it
 * could be given to a new connection whose events it would then take for this tunnel's. So a stray destroy() of
 * either socket closes only the JavaScript side (its 'close' then aborts the tunnel), and the handles are closed
 * here, after the native side stopped polling them. The descriptors are the sockets' own, not duplicates: a
 * tunnel holds two, as in the JavaScript copy, not four.
 */
class KernelSplice implements SpliceHandle, NativeReceiver, OpenConnection {
  get inKernel(): boolean {
    return true;
  }

  readonly done: Promise<SpliceResult>;
  /** Undefined once retired (retireSockets()). */
  #a: Socket | undefined;
  #b: Socket | undefined;
  /** The retired sockets' 'close' listeners, called when the tunnel ends. */
  #closeListeners: ((this: unknown) => void)[] | undefined;
  readonly #native: NativeKernelSplice;
  #handle: NativeHandle | undefined;
  #handleA: StreamHandle | undefined;
  #handleB: StreamHandle | undefined;
  #settle: (result: SpliceResult) => void = () => undefined;
  #result: SpliceResult | undefined;

  constructor(native: NativeKernelSplice, a: Socket, b: Socket) {
    this.#native = native;
    this.#a = a;
    this.#b = b;
    this.done = new Promise<SpliceResult>((resolve) => {
      this.#settle = resolve;
    });
  }

  /** Hands both descriptors to the native side; false (and nothing started, both sockets as they were) where it refused them. */
  start(handleA: StreamHandle, handleB: StreamHandle, earlyAtoB: Buffer | null, earlyBtoA: Buffer | null): boolean {
    try {
      this.#handle = this.#native.start(handleA.fd!, handleB.fd!, earlyAtoB, earlyBtoA, this);
    } catch {
      return false;
    }
    this.#handleA = handleA;
    this.#handleB = handleB;
    for (const socket of [this.#a!, this.#b!]) {
      (socket as unknown as HandleSlot)._handle = null;
      kernelSpliceOf.set(socket, this);
      socket.on('close', KernelSplice.#onStrayClose);
    }
    return true;
  }

  /**
   * Lets go of both Socket objects while the kernel moves the tunnel: an idle tunnel is then its two handles (the
   * descriptors), the native state and this object, not two streams with their states and listeners, which were
   * about a third of its heap (`npm run bench:idle-heap`: 5.9 KiB per tunnel before, 4.1 after). What
   * counted the sockets as open counts this instead (`places`), and their 'close' listeners (those counts, a route
   * released) are taken off to be called when the tunnel ends. The sockets are then destroyed on the JavaScript
   * side only, so that Node's server no longer counts them; their descriptors stay open and are closed at the end.
   */
  retireSockets(places: readonly (ConnectionPlace | undefined)[]): void {
    if (this.#result !== undefined || this.#a === undefined || this.#b === undefined) return;
    for (const place of places) if (place !== undefined) place.connection = this;
    const listeners: ((this: unknown) => void)[] = [];
    for (const socket of [this.#a, this.#b]) {
      kernelSpliceOf.delete(socket);
      socket.removeListener('close', KernelSplice.#onStrayClose);
      listeners.push(...(socket.listeners('close') as ((this: unknown) => void)[]));
      socket.removeAllListeners('close');
      socket.destroy();
    }
    forgetOwner(this.#handleA!);
    forgetOwner(this.#handleB!);
    this.#closeListeners = listeners;
    this.#a = this.#b = undefined;
  }

  /** Shutdown closing the connections this tunnel stands in for (it aborted the tunnel before: this does nothing then). */
  destroy(): void {
    this.abort(new ProxyError('connection_terminated', 'tunnel connection closed'));
  }

  /** A socket closed while its handle was away: something destroyed it, and the tunnel cannot go on without it. */
  static #onStrayClose(this: Socket): void {
    kernelSpliceOf.get(this)?.abort(new ProxyError('connection_terminated', 'a tunnel socket was destroyed while the kernel moved its bytes'));
  }

  bytesMoved(): number {
    if (this.#result !== undefined) return this.#result.aToB + this.#result.bToA;
    return this.#native.moved(this.#handle!);
  }

  abort(reason: ProxyError): void {
    if (this.#result !== undefined) return;
    this.#native.stop(this.#handle!);
    this.#end(reason);
  }

  /** Both directions ended, or one failed. */
  nativeFinished(errno: number | undefined): void {
    if (this.#result !== undefined) return;
    this.#end(errno === undefined ? undefined : toProxyError(errnoError(errno), 'connection_terminated'));
  }

  /**
   * The native side watches neither descriptor any more: the sockets can go, and with them the connections. Settles
   * once both closed, as splice.ts does, so a flow never ends while its sockets still count as open.
   */
  #end(error: ProxyError | undefined): void {
    const [aToB, bToA] = this.#native.counts(this.#handle!);
    const result = (this.#result = { aToB, bToA, error });
    let open = 2;
    const closed = (): void => {
      if (--open === 0) this.#settle(result);
    };
    const handles = [this.#handleA!, this.#handleB!];
    const retired = this.#closeListeners;
    if (retired !== undefined) {
      this.#closeListeners = undefined;
      for (const handle of handles) handle.close!();
      for (const listener of retired) listener.call(this);
      this.#settle(result);
      return;
    }
    for (const [i, socket] of [this.#a!, this.#b!].entries()) {
      kernelSpliceOf.delete(socket);
      socket.removeListener('close', KernelSplice.#onStrayClose);
      if (socket.destroyed) {
        // Destroyed without its handle: its descriptor is still open, and closed only now.
        handles[i]!.close!();
        closed();
        continue;
      }
      (socket as unknown as HandleSlot)._handle = handles[i]!;
      socket.once('close', closed);
      socket.destroy();
    }
  }
}

/**
 * Hands a tunnel to the kernel if it can: `earlyAtoB`/`earlyBtoA` are bytes already read that belong to the other
 * side (the CONNECT head, a 101's extra bytes); what either stream buffered follows them. Undefined where it
 * cannot, with both sockets as they were apart from the bytes it took out of their streams, which it then hands
 * back in `early` for the JavaScript copy to write first.
 */
export function takeTunnel(a: Socket, b: Socket, earlyAtoB: Buffer | undefined, earlyBtoA: Buffer | undefined): { handle: SpliceHandle } | { early: [Buffer | undefined, Buffer | undefined] } | undefined {
  const module = loadNative();
  if (module === null) return undefined;
  const handleA = handleOf(a);
  const handleB = handleOf(b);
  if (handleA === undefined || handleB === undefined) return undefined;
  // Buffered bytes are read out before reads stop: read() may ask the handle for more, which stopReading then undoes.
  const toB = joined(earlyAtoB, takeBuffered(a));
  const toA = joined(earlyBtoA, takeBuffered(b));
  stopReading(a, handleA);
  stopReading(b, handleB);
  const splice = new KernelSplice(module, a, b);
  if (splice.start(handleA, handleB, toB, toA)) return { handle: splice };
  return { early: [toB ?? undefined, toA ?? undefined] };
}

/** A body the kernel is moving: stop() ends it at once (the caller then closes what it must). */
export interface BodyTransfer {
  /** Bytes taken from the source so far. */
  moved(): number;
  /** Whether it waits for the destination to take bytes (the source's silence meanwhile is not the source's fault). */
  heldByDestination(): boolean;
  stop(): void;
}

class KernelBody implements BodyTransfer, NativeReceiver {
  readonly #native: NativeKernelSplice;
  readonly #done: (error: Error | undefined) => void;
  #handle: NativeHandle | undefined;
  #over = false;

  constructor(native: NativeKernelSplice, done: (error: Error | undefined) => void) {
    this.#native = native;
    this.#done = done;
  }

  start(fdFrom: number, fdTo: number, early: Buffer | null, length: number): boolean {
    try {
      this.#handle = this.#native.transfer(fdFrom, fdTo, early, length, this);
      return true;
    } catch {
      return false;
    }
  }

  moved(): number {
    return this.#native.moved(this.#handle!);
  }

  heldByDestination(): boolean {
    return this.#native.writerBlocked(this.#handle!);
  }

  stop(): void {
    if (this.#over) return;
    this.#over = true;
    this.#native.stop(this.#handle!);
  }

  nativeFinished(errno: number | undefined): void {
    if (this.#over) return;
    this.#over = true;
    this.#done(errno === undefined ? undefined : errnoError(errno));
  }
}

/**
 * Hands the rest of a body to the kernel: `early` (bytes already read, written first), then exactly `length` bytes
 * read from `source` and written to `destination`. `done` is called once, with an error if either side failed
 * (ENODATA: the source ended before `length`), unless stop() came first. Reading of `source` stops here and is the
 * caller's to resume; `destination` is only written, and must have nothing queued. Undefined, with both sockets
 * untouched, where it cannot be done: the caller copies in JavaScript.
 */
export function takeBody(source: Socket, destination: Socket, early: Buffer | null, length: number, done: (error: Error | undefined) => void): BodyTransfer | undefined {
  const module = loadNative();
  if (module === null) return undefined;
  const from = handleOf(source);
  const to = handleOf(destination);
  if (from === undefined || to === undefined || source.readableLength > 0) return undefined;
  const body = new KernelBody(module, done);
  stopReading(source, from);
  if (body.start(from.fd!, to.fd!, early, length)) return body;
  source.resume();
  return undefined;
}
