import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { connect, isIP, type LookupFunction, type OnReadOpts, type Socket, type TcpNetConnectOpts } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { DestinationGuard } from '../core/destination.js';
import { ProxyError, toProxyError } from '../core/errors.js';
import { LiveList, type LiveEntry } from '../core/live-list.js';

export interface DialTarget {
  host: string;
  port: number;
  /** Local address to connect from (multi-homed hosts rotate it: `--bind`). */
  localAddress?: string | undefined;
  /**
   * Start TLS on the connection with these options (tls.connect). The dial still resolves once TCP is connected;
   * the caller waits for 'secureConnect'. A reader's `onread` then receives the plaintext: Node ignores `onread`
   * for TLS over a socket it is given, so TLS must be started by the dial itself.
   */
  tls?: ConnectionOptions | undefined;
}

/** Opens the TCP connection a tunnel or upgrade runs over. Implementations: direct now, upstream proxies later. */
/** A socket's reader through Node's `onread`: the dialer creates the socket with it and hands the socket to adopt(). */
export interface SocketReader {
  readonly onread: OnReadOpts;
  adopt(socket: Socket): void;
}

export interface Dialer {
  /**
   * Resolves with a connected socket; rejects with a ProxyError. `signal` aborts the attempt (shutdown). With
   * `reader`, the socket is created with its `onread` and handed to `reader.adopt()` (CONNECT tunnels). `guard`
   * checks every address dialled (after DNS) instead of the dialer's own: a flow's checks (runtime.guardFor).
   */
  dial(target: DialTarget, signal?: AbortSignal, reader?: SocketReader, guard?: DestinationGuard): Promise<Socket>;
}

/** The resolver direct connections use: `dns.lookup`'s shape, so a custom one (or a test's) drops in. */
export type Resolver = LookupFunction;

/**
 * Resolves names for direct connections and applies a guard to every address an answer holds, before connecting
 * (Node skips `lookup` for IP literals, so callers check those with the guard directly). One per proxy.
 */
export class GuardedResolver {
  readonly #resolve: Resolver;
  /** Lookups of guards that outlive flows (the proxy's loop guard), per port: made once, not once per request. */
  readonly #shared = new WeakMap<DestinationGuard, Map<number, LookupFunction>>();

  constructor(resolve: Resolver = dnsLookup as Resolver) {
    this.#resolve = resolve;
  }

  /** Every address `hostname` resolves to, unguarded (transparent mode checks a client's Host or SNI with it). */
  resolveAll(hostname: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      this.#resolve(hostname, { all: true }, (err, address) => {
        if (err) reject(err);
        else resolve(Array.isArray(address) ? address.map((entry) => entry.address) : [address as string]);
      });
    });
  }

  /** Marks a guard shared by many flows, so lookupFor caches its lookups per port. */
  share(guard: DestinationGuard): void {
    if (!this.#shared.has(guard)) this.#shared.set(guard, new Map());
  }

  /** The `lookup` to give net.connect or an http request for `port`, checked by `guard`. */
  lookupFor(guard: DestinationGuard, port: number): LookupFunction {
    const byPort = this.#shared.get(guard);
    if (byPort === undefined) return this.#create(guard, port);
    let lookup = byPort.get(port);
    if (lookup === undefined) {
      lookup = this.#create(guard, port);
      byPort.set(port, lookup);
    }
    return lookup;
  }

  #create(guard: DestinationGuard, port: number): LookupFunction {
    const resolve = this.#resolve;
    return function guardedLookup(hostname, options, callback) {
      resolve(hostname, options as LookupOptions, (err, address, family) => {
        if (err) {
          callback(err, '', 0);
          return;
        }
        const addresses: LookupAddress[] = Array.isArray(address) ? address : [{ address: address as string, family: family ?? 4 }];
        for (const entry of addresses) {
          const refused = guard(entry.address, port);
          if (refused) {
            callback(refused, '', 0);
            return;
          }
        }
        (callback as (e: null, a: string | LookupAddress[], f?: number) => void)(null, address, family);
      });
    };
  }
}

export interface DirectDialerOptions {
  connectTimeoutMs: number;
  resolver: GuardedResolver;
  /** For dials that bring no guard of their own (the first hop to an upstream proxy). */
  guard: DestinationGuard;
}

export class DirectDialer implements Dialer {
  readonly #options: DirectDialerOptions;
  /**
   * Dials in progress per abort signal. One 'abort' listener per signal serves them all: adding and removing an
   * EventTarget listener per dial showed up in the CONNECT-setup profile.
   */
  readonly #inProgress = new WeakMap<AbortSignal, LiveList<() => void>>();

  constructor(options: DirectDialerOptions) {
    this.#options = options;
  }

  dial(target: DialTarget, signal?: AbortSignal, reader?: SocketReader, guard = this.#options.guard): Promise<Socket> {
    const { connectTimeoutMs } = this.#options;
    const literal = isIP(target.host) !== 0;
    if (literal) {
      const refused = guard(target.host, target.port);
      if (refused) return Promise.reject(refused);
    }
    if (signal?.aborted) return Promise.reject(new ProxyError('connection_terminated', 'proxy is shutting down'));
    return new Promise((resolve, reject) => {
      const options: TcpNetConnectOpts = { host: target.host, port: target.port, allowHalfOpen: true, noDelay: true };
      if (target.localAddress !== undefined) options.localAddress = target.localAddress;
      // Node skips lookup for IP literals, which were checked above.
      if (!literal) options.lookup = this.#options.resolver.lookupFor(guard, target.port);
      if (reader !== undefined) options.onread = reader.onread;
      const socket = target.tls === undefined ? connect(options) : tlsConnect(Object.assign(options, target.tls) as ConnectionOptions);
      reader?.adopt(socket);
      const pending = signal === undefined ? undefined : this.#pendingFor(signal);
      let tracked: LiveEntry | undefined;
      const fail = (err: unknown): void => {
        cleanup();
        socket.destroy();
        reject(toProxyError(err, 'connection_refused'));
      };
      const onAbort = (): void => fail(new ProxyError('connection_terminated', 'proxy is shutting down'));
      const timer = setTimeout(
        () => fail(new ProxyError('connection_timeout', `no connection to ${target.host}:${target.port} within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      const cleanup = (): void => {
        clearTimeout(timer);
        tracked?.remove();
        socket.removeListener('error', fail);
        socket.removeListener('connect', onConnect);
      };
      const onConnect = (): void => {
        cleanup();
        // Errors after this point are the consumer's to handle; until it attaches its own listener the socket must
        // not crash the process, and `socket.errored` keeps the reason for it to read.
        socket.on('error', keepErrorOnSocket);
        resolve(socket);
      };
      tracked = pending?.add(onAbort);
      socket.once('connect', onConnect);
      socket.on('error', fail);
    });
  }

  #pendingFor(signal: AbortSignal): LiveList<() => void> {
    let pending = this.#inProgress.get(signal);
    if (pending === undefined) {
      // A list, not a Set: a long-lived Set that every dial passes through makes V8 promote each dial's objects.
      const dials = new LiveList<() => void>();
      signal.addEventListener('abort', () => {
        for (const abort of dials.values()) abort();
      }, { once: true });
      this.#inProgress.set(signal, dials);
      pending = dials;
    }
    return pending;
  }
}

function keepErrorOnSocket(this: Socket): void {
  this.destroy();
}
