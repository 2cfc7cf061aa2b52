import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ResolvedProxyOptions } from '../config/options.js';
import type { ClientInfo } from './connection.js';
import type { ProxyError } from './errors.js';
import type { Flow, TunnelFlow } from './flow.js';
import type { CertificateAuthority } from '../mitm/certificate-authority.js';
import type { LeafCertificates } from '../mitm/leaf-certificates.js';
import type { MitmPolicy } from '../mitm/mitm-policy.js';
import type { HookRunner } from './hook-runner.js';
import type { DestinationGuard } from './destination.js';
import type { Dialer } from '../upstream/dialer.js';
import type { SpliceHandle } from '../tunnel/splice.js';
import type { RouteAgents } from '../upstream/route-agents.js';
import type { RoutePlanner } from '../upstream/route-planner.js';

export interface MitmRuntime {
  readonly ca: CertificateAuthority;
  readonly leaves: LeafCertificates;
  readonly policy: MitmPolicy;
  /** How long to wait for a client's first bytes before treating the tunnel as server-first (not TLS). */
  readonly peekTimeoutMs: number;
  /** Set when leaves copy the names of the origin's own certificate: host:port|sni → names, remembered. */
  readonly originNames: Map<string, string[]> | undefined;
}

export interface Interception {
  host: string;
  port: number;
  tunnel: TunnelFlow;
  serverName: string | undefined;
}

/** Spread into every TLS connection to an origin or upstream. `ca: undefined` keeps Node's default store. */
export interface OriginTlsOptions {
  /** Trust anchors when a caBundle is configured (system roots + bundle). */
  ca: string[] | undefined;
  rejectUnauthorized: boolean;
}

/**
 * What the IO handlers (HTTP forwarding, CONNECT, Upgrade) need from the proxy that owns them. One value built by
 * createProxy(), so handlers never reach for module state and two proxies in one process stay apart.
 */
export interface ProxyRuntime {
  readonly options: ResolvedProxyOptions;
  /**
   * This proxy's received-by in Via, `getaway-` plus a random id per createProxy(): a request whose Via already
   * names it has come round in a loop and is refused.
   */
  readonly pseudonym: string;
  readonly logger: Logger;
  readonly hooks: HookRunner;
  readonly dialer: Dialer;
  /** Where requests and tunnels go (direct or upstream proxies) and in which failover order. */
  readonly routes: RoutePlanner;
  /** Pooled agents for plain requests through upstream proxies. */
  readonly routeAgents: RouteAgents;
  /**
   * The checks for the addresses a flow's direct routes dial: loop protection, then the `dialing` hooks with this
   * flow. Without dialing hooks, one shared guard (its DNS lookups are cached per port).
   */
  guardFor(flow: Flow): DestinationGuard;
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  /** Aborted when close() gives up waiting: dials in progress stop. */
  readonly shutdownSignal: AbortSignal;
  /** True once close() was called: responses carry `Connection: close` and no new tunnel opens. */
  isClosing(): boolean;
  clientInfo(socket: Socket): ClientInfo;
  /** Registers a flow until it ends; graceful shutdown waits for HTTP flows. */
  flowStarted(flow: Flow): void;
  flowEnded(flow: Flow): void;
  /**
   * Registers a running splice: it is ended after tunnelIdleTimeoutMs without traffic, and cut by shutdown.
   * Returns the function that unregisters it.
   */
  spliceStarted(handle: SpliceHandle): () => void;
  /** Counts sockets the proxy opened outside the agents' pools (tunnels, upgrades) for `proxy.connections`. */
  trackUpstreamSocket(socket: Socket): void;
  /** Set when interception is configured (a CA is loaded). */
  readonly mitm: MitmRuntime | undefined;
  /** How origins' TLS certificates are verified: system store (+ caBundle), unless insecureUpstreamTls. */
  readonly originTls: OriginTlsOptions;
  /** Feeds a decrypted client connection to the HTTP listener, remembering which tunnel it belongs to. */
  serveIntercepted(tls: Socket, raw: Socket, interception: Interception): void;
  /** The interception a (decrypted) client socket belongs to, if any. */
  interceptionOf(socket: Socket): Interception | undefined;
  /** Tunnels and upgrades in progress, this one included. */
  tunnelCount(): number;
  /** A request refused before it became a flow (malformed, over a limit): counted and logged once, here. */
  requestRejected(socket: Socket, error: ProxyError): void;
  /**
   * Client connections that already got their final answer with `Connection: close` while bytes of the request
   * were still unread. llhttp keeps parsing those bytes; a parse error in them needs no second answer.
   */
  readonly answeredBeforeBodyEnd: WeakSet<Socket>;
}
