/**
 * Keep-alive connections to origins for the direct exchange (http/origin-exchange.ts), plain or TLS, last used
 * first out per origin, as node:http's agent pools with `scheduling: 'lifo'`, and the TLS sessions to resume. Each
 * connection reads through Node's `onread` into the buffer every such reader shares (core/shared-read-buffer.ts)
 * (a TLS one its plaintext) and hands each read, as a view of it, to whoever holds the connection; while it sits
 * in the pool, any byte or FIN from the origin retires it.
 */
import type { OnReadOpts, Socket } from 'node:net';
import { LiveList, type LiveEntry } from '../core/live-list.js';
import { returnChunk, sharedReadBuffer, SMALL_READ, takeChunk } from '../core/shared-read-buffer.js';
import type { SocketReader } from './dialer.js';

/** What the holder of a connection is told. Every call is synchronous from the socket's own event. */
export interface ConnectionUser {
  /** A read, as a view of the shared buffer valid only during the call. False stops reading until resume(). */
  onRead(view: Buffer): boolean;
  /** The origin sent FIN. */
  onEnd(): void;
  /** The socket closed, with the error that closed it, if one did. */
  onClose(error: Error | undefined): void;
  /** The socket's idle timeout (set by the user) passed. */
  onTimeout(): void;
}

/** Free connections kept per origin, as node:http's maxFreeSockets default. */
const MAX_FREE_PER_ORIGIN = 256;
/** TLS sessions kept for resumption, one per origin, as https.Agent's maxCachedSessions default. */
const MAX_TLS_SESSIONS = 100;

export class OriginConnection implements SocketReader {
  readonly onread: OnReadOpts;
  readonly key: string;
  #socket: Socket | undefined;
  #user: ConnectionUser | undefined;
  #entry: LiveEntry | undefined;
  /**
   * Set once a read said stop: what arrives before resume() waits here, copied. A plain socket stops at once; a TLS
   * socket hands over the rest of the records it already decrypted (Node's TLS layer goes on through them after
   * readStop), and those must neither reach a holder that asked to wait nor be lost.
   */
  #held: HeldRead[] | undefined;

  constructor(key: string, all: LiveList<OriginConnection>) {
    this.key = key;
    this.onread = { buffer: sharedReadBuffer, callback: (bytes) => this.#read(bytes) };
    this.#entry = all.add(this);
  }

  get socket(): Socket {
    if (this.#socket === undefined) throw new Error('origin connection has no socket yet');
    return this.#socket;
  }

  /** Whether the connection may carry another request: open both ways, nothing pending from the origin. */
  get reusable(): boolean {
    const socket = this.#socket;
    return socket !== undefined && !socket.destroyed && socket.readable && socket.writable;
  }

  /** Called by the dialer with the socket it created with this connection's `onread`. */
  adopt(socket: Socket): void {
    this.#socket = socket;
    socket.on('end', () => {
      const user = this.#user;
      if (user === undefined) socket.destroy();
      else user.onEnd();
    });
    socket.on('close', () => {
      this.#entry?.remove();
      this.#entry = undefined;
      this.#user?.onClose(socket.errored ?? undefined);
    });
    socket.on('timeout', () => {
      const user = this.#user;
      if (user === undefined) socket.destroy();
      else user.onTimeout();
    });
    // The reason is kept in socket.errored for onClose; a listener must exist so the error does not crash the process.
    socket.on('error', () => {});
  }

  hold(user: ConnectionUser | undefined): void {
    // Bytes held back from the last holder and never asked for are past its response: out of step, as in #read.
    if (this.#held !== undefined && this.#held.length > 0) {
      giveBack(this.#held, 0);
      this.#socket?.destroy();
    }
    this.#user = user;
    this.#held = undefined;
  }

  close(): void {
    this.#socket?.destroy();
  }

  /** Reading again after onRead returned false: what was held back first, in order. */
  resume(): void {
    const held = this.#held;
    this.#held = undefined;
    const user = this.#user;
    if (held !== undefined && user !== undefined) {
      for (let i = 0; i < held.length; i++) {
        const read = held[i]!;
        // The holder copies what it keeps during the call, so the chunk is free again once it returns.
        const more = user.onRead(read.bytes);
        if (read.chunk !== undefined) returnChunk(read.chunk);
        if (this.#user !== user) {
          // That read finished the holder's response and the connection was let go: anything after it is past the
          // response (out of step, as in hold()); with nothing after it, the pool reads again to watch for that.
          if (i + 1 === held.length) break;
          giveBack(held, i + 1);
          this.#socket?.destroy();
          return;
        }
        if (!more) {
          this.#held = held.slice(i + 1);
          return;
        }
      }
    }
    this.#socket?.resume();
  }

  #read(bytes: number): boolean {
    const user = this.#user;
    if (user === undefined) {
      // An idle connection the origin writes to is out of step with it (or being closed with a final message).
      this.#socket?.destroy();
      return false;
    }
    if (this.#held !== undefined) {
      this.#held.push(holdRead(bytes));
      return false;
    }
    const more = user.onRead(sharedReadBuffer.subarray(0, bytes));
    if (!more) this.#held = [];
    return more;
  }
}

/** A read held back after a stop: its bytes, and the pooled chunk they sit in when the read was large. */
interface HeldRead {
  readonly bytes: Buffer;
  readonly chunk: Buffer | undefined;
}

/**
 * Copies the shared buffer's first `bytes` out to be held. A TLS origin's records after a stop are up to 16 KiB each
 * and, behind a slow client, most of what it sends (60 % of an intercepted 64 MiB download's records); a fresh
 * Buffer for each is memory outside V8's heap, whose turnover makes V8 mark the whole heap every 64 MB or so
 * ("external memory pressure" in `--trace-gc`). Large reads go into the chunks the client's writes use instead.
 */
function holdRead(bytes: number): HeldRead {
  if (bytes < SMALL_READ) return { bytes: Buffer.from(sharedReadBuffer.subarray(0, bytes)), chunk: undefined };
  const chunk = takeChunk(bytes);
  sharedReadBuffer.copy(chunk, 0, 0, bytes);
  return { bytes: chunk.subarray(0, bytes), chunk };
}

function giveBack(held: readonly HeldRead[], from: number): void {
  for (let i = from; i < held.length; i++) {
    const chunk = held[i]!.chunk;
    if (chunk !== undefined) returnChunk(chunk);
  }
}

export class OriginPool {
  readonly #free = new Map<string, OriginConnection[]>();
  /** The last TLS session per https origin, oldest first (a Map keeps insertion order). */
  readonly #sessions = new Map<string, Buffer>();
  readonly #all = new LiveList<OriginConnection>();
  readonly #idleMs: number;
  #closed = false;

  constructor(idleMs: number) {
    this.#idleMs = idleMs;
  }

  /** A new connection for `key`, counted in the pool's set so destroy() reaches it; the caller dials its socket. */
  create(key: string): OriginConnection {
    return new OriginConnection(key, this.#all);
  }

  /** The last-released open connection for `key`, if any. */
  take(key: string): OriginConnection | undefined {
    const free = this.#free.get(key);
    if (free === undefined) return undefined;
    for (let connection = free.pop(); connection !== undefined; connection = free.pop()) {
      if (!connection.reusable) continue;
      connection.socket.setTimeout(0);
      connection.socket.ref();
      if (free.length === 0) this.#free.delete(key);
      return connection;
    }
    this.#free.delete(key);
    return undefined;
  }

  /** Back to the pool once a response ended cleanly on a connection that may be reused; closed otherwise. */
  release(connection: OriginConnection): void {
    connection.hold(undefined);
    if (this.#closed || !connection.reusable) {
      connection.socket.destroy();
      return;
    }
    let free = this.#free.get(connection.key);
    if (free === undefined) {
      free = [];
      this.#free.set(connection.key, free);
    }
    if (free.length >= MAX_FREE_PER_ORIGIN) {
      connection.socket.destroy();
      return;
    }
    const socket = connection.socket;
    socket.setTimeout(this.#idleMs);
    // An idle pooled connection does not keep the process alive (node:http's agent unrefs them too).
    socket.unref();
    free.push(connection);
  }

  /** The TLS session to offer a new connection to `key`, for an abbreviated handshake. */
  tlsSession(key: string): Buffer | undefined {
    return this.#sessions.get(key);
  }

  /** Keeps the session a connection to `key` was given: the newest replaces the one before, resumed or not. */
  keepTlsSession(key: string, session: Buffer): void {
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
    if (this.#sessions.size > MAX_TLS_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
  }

  /** Closes every connection, free or in use; later releases close theirs. */
  destroy(): void {
    this.#closed = true;
    this.#free.clear();
    // One still dialling has no socket yet: the dialer's shutdown signal ends it.
    for (const connection of this.#all.values()) connection.close();
  }
}
