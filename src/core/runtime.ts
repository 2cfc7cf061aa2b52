import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClientInfo } from './connection.js';
import type { DestinationGuard } from './destination.js';
import type { ProxyError } from './errors.js';
import type { Flow, TunnelFlow } from './flow.js';
import type { HookRunner } from './hook-runner.js';
import type { CoreOptions } from './options.js';

/** A decrypted client connection's tunnel: which CONNECT it came through and the SNI the client sent. */
export interface Interception {
  host: string;
  port: number;
  tunnel: TunnelFlow;
  serverName: string | undefined;
}

/** What the registry needs of a running splice (tunnel/splice.ts's SpliceHandle is one). */
export interface RunningSplice {
  /** Bytes read from either side so far: it changes whenever the splice carries anything. */
  bytesMoved(): number;
  /** Ends the splice now (shutdown, idle). */
  abort(reason: ProxyError): void;
  /** True when the kernel moves its bytes (tunnel/kernel-splice.ts), counted in `stats().tunnelsInKernel`. */
  readonly inKernel: boolean;
}

/** What the counts of open connections hold and shutdown closes: a socket, or what stands in for one that was let go. */
export interface OpenConnection {
  destroy(): void;
}

/**
 * A connection's place in the counts of open connections. A tunnel the kernel moves lets go of its Socket objects
 * (tunnel/kernel-splice.ts, retireSockets()) and takes their places: the connections still count, and shutdown
 * closes them through it.
 */
export interface ConnectionPlace {
  connection: OpenConnection;
}

/**
 * The flows, splices and sockets in progress, and the proxy's shutdown state: what graceful close, `proxy.stats()`
 * and the limits read. Implemented by core/proxy.ts.
 */
export interface FlowRegistry {
  /** Registers a flow until it ends; graceful shutdown waits for HTTP flows. */
  flowStarted(flow: Flow): void;
  flowEnded(flow: Flow): void;
  /** Tunnels and upgrades in progress, this one included. */
  tunnelCount(): number;
  /** A response body's rest was handed to the kernel (counted in `stats().bodiesInKernel`). */
  bodyMovedByKernel(): void;
  /** A request body's rest was handed to the kernel (counted in `stats().requestBodiesInKernel`). */
  requestBodyMovedByKernel(): void;
  /**
   * Registers a running splice: it is ended after tunnelIdleTimeoutMs without traffic, and cut by shutdown.
   * Returns the function that unregisters it.
   */
  spliceStarted(handle: RunningSplice): () => void;
  /** Counts sockets the proxy opened outside the agents' pools (tunnels, upgrades) for `proxy.connections`, until they close. */
  trackUpstreamSocket(socket: Socket): ConnectionPlace;
  /** An admitted client connection's place in the counts (undefined for a socket no listener admitted). */
  clientPlace(socket: Socket): ConnectionPlace | undefined;
  /** A request refused before it became a flow (malformed, over a limit): counted and logged once, here. */
  requestRejected(socket: Socket, error: ProxyError): void;
  /** True once close() was called: responses carry `Connection: close` and no new tunnel opens. */
  isClosing(): boolean;
  /** Aborted when close() gives up waiting: dials in progress stop. */
  readonly shutdownSignal: AbortSignal;
}

/** How decrypted connections find their way back into the HTTP path, and back to their tunnel. */
export interface InterceptionRegistry {
  /** Feeds a decrypted client connection to the HTTP listener, remembering which tunnel it belongs to. */
  serveIntercepted(tls: Socket, raw: Socket, interception: Interception): void;
  /** The interception a (decrypted) client socket belongs to, if any. */
  interceptionOf(socket: Socket): Interception | undefined;
}

/**
 * What the core itself gives every IO handler: settings, hooks, the client behind a socket, the destination checks
 * and the registries. The handlers' full runtime (src/runtime.ts) adds the upstream and interception parts, which
 * are theirs to define; the core imports nothing from them.
 */
export interface CoreRuntime extends FlowRegistry, InterceptionRegistry {
  readonly options: CoreOptions;
  /**
   * This proxy's received-by in Via, `getaway-` plus a random id per createProxy(): a request whose Via already
   * names it has come round in a loop and is refused.
   */
  readonly pseudonym: string;
  readonly logger: Logger;
  readonly hooks: HookRunner;
  clientInfo(socket: Socket): ClientInfo;
  /**
   * The checks for the addresses a flow's direct routes dial: loop protection, then the `dialing` hooks with this
   * flow. Without dialing hooks, one shared guard (its DNS lookups are cached per port).
   */
  guardFor(flow: Flow): DestinationGuard;
  /**
   * Client connections that already got their final answer with `Connection: close` while bytes of the request
   * were still unread. llhttp keeps parsing those bytes; a parse error in them needs no second answer.
   */
  readonly answeredBeforeBodyEnd: WeakSet<Socket>;
}
