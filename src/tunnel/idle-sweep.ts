/**
 * Idle timeouts for every open tunnel from one timer, and the list of open tunnels that shutdown cuts.
 *
 * Each sweep compares a tunnel's byte counters with what the previous sweep saw; a tunnel whose counters have
 * not moved for `idleMs` is aborted. It therefore closes between `idleMs` and `idleMs` plus one sweep interval
 * (an eighth of `idleMs`, within 10 ms and 5 s). Written by hand instead of `socket.setTimeout()` on both sides,
 * which cost two timer objects, two bound callbacks and two 'timeout' listeners per tunnel, and a timer refresh on
 * every read and every write; `npm run bench:pair -- <before> . setup` read 0.98 (five repetitions, 0.95–1.10).
 */
import { performance } from 'node:perf_hooks';
import { ProxyError } from '../core/errors.js';
import { LiveList, type LiveEntry } from '../core/live-list.js';

/** What the sweep watches: a byte stream that can tell how much it has moved, and be ended. */
export interface SweptStream {
  /** Any counter that changes whenever bytes move (read from either side). */
  bytesMoved(): number;
  abort(reason: ProxyError): void;
}

class Watched {
  bytes: number;
  since: number;

  constructor(
    readonly stream: SweptStream,
    now: number,
  ) {
    this.bytes = stream.bytesMoved();
    this.since = now;
  }
}

export class IdleSweep {
  readonly #idleMs: number;
  readonly #intervalMs: number;
  readonly #watched = new LiveList<Watched>();
  #timer: NodeJS.Timeout | undefined;

  constructor(idleMs: number) {
    this.#idleMs = idleMs;
    this.#intervalMs = Math.min(5000, Math.max(10, Math.floor(idleMs / 8)));
  }

  get size(): number {
    return this.#watched.size;
  }

  /** Watches `stream` until the returned entry is removed. */
  watch(stream: SweptStream): LiveEntry {
    const entry = this.#watched.add(new Watched(stream, performance.now()));
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#sweep(), this.#intervalMs);
      // Open tunnels keep the process alive through their sockets, not through this timer.
      this.#timer.unref();
    }
    return entry;
  }

  /** The streams watched now (a copy: aborting them removes them). */
  streams(): SweptStream[] {
    return this.#watched.values().map((watched) => watched.stream);
  }

  #sweep(): void {
    if (this.#watched.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = performance.now();
    for (const watched of this.#watched.values()) {
      const bytes = watched.stream.bytesMoved();
      if (bytes !== watched.bytes) {
        watched.bytes = bytes;
        watched.since = now;
      } else if (now - watched.since >= this.#idleMs) {
        watched.stream.abort(new ProxyError('connection_read_timeout', `tunnel idle for ${this.#idleMs} ms`));
      }
    }
  }
}
