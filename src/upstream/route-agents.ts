/**
 * Pooled keep-alive agents for plain requests that do not go straight to the origin, one per route and kind:
 *  - through an HTTP(S) upstream, requests go in absolute form on connections pooled to that upstream;
 *  - through SOCKS5, and for https:// requests through any upstream, each pooled connection is a tunnel
 *    (connect-through.ts), with TLS to the origin on top for https://.
 */
import { Agent as HttpAgent, type AgentOptions, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { toProxyError } from '../core/errors.js';
import type { ClientInfo } from '../core/connection.js';
import { connectThrough, openUpstreamConnection, type ConnectThroughOptions } from './connect-through.js';
import type { Route } from './route-planner.js';
import { serverNameFor, startOriginTls, type OriginTlsOptions } from './origin-tls.js';

type UpstreamRoute = Extract<Route, { kind: 'upstream' }>;

/** Plain http:// requests to an HTTP(S) upstream go in absolute form for it to forward; everything else is tunnelled. */
export function forwardsInAbsoluteForm(route: UpstreamRoute, scheme: 'http' | 'https'): boolean {
  return scheme === 'http' && (route.upstream.protocol === 'http' || route.upstream.protocol === 'https');
}

/** Each connection is a tunnel to the origin along `route`; with `tls`, TLS to the origin runs inside it. */
class TunnelAgent extends HttpAgent {
  readonly #route: UpstreamRoute;
  readonly #connect: ConnectThroughOptions;
  readonly #tls: OriginTlsOptions | undefined;

  constructor(route: UpstreamRoute, tls: OriginTlsOptions | undefined, connect: ConnectThroughOptions, options: AgentOptions) {
    super(options);
    this.#route = route;
    this.#tls = tls;
    this.#connect = connect;
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const host = options.host ?? 'localhost';
    const port = Number(options.port);
    connectThrough(this.#route, { host, port }, this.#connect).then(
      (socket) => {
        if (this.#tls === undefined) {
          callback?.(null, socket);
          return;
        }
        const tls = startOriginTls(socket, host, this.#tls);
        tls.once('secureConnect', () => callback?.(null, tls));
        tls.once('error', (err) => callback?.(toProxyError(err, 'tls_protocol_error'), tls));
      },
      // Node's oncreate reads only the error when there is one.
      (err: Error) => (callback as ((err: Error) => void) | undefined)?.(err),
    );
    return undefined;
  }
}

/** Forwards in absolute form over connections that begin with a PROXY protocol header (openUpstreamConnection). */
class ForwardAgent extends HttpAgent {
  readonly #route: UpstreamRoute;
  readonly #connect: ConnectThroughOptions;

  constructor(route: UpstreamRoute, connect: ConnectThroughOptions, options: AgentOptions) {
    super(options);
    this.#route = route;
    this.#connect = connect;
  }

  override createConnection(_options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    openUpstreamConnection(this.#route.upstream, this.#connect).then(
      (socket) => callback?.(null, socket),
      (err: Error) => (callback as ((err: Error) => void) | undefined)?.(err),
    );
    return undefined;
  }
}

export interface RouteAgentOptions {
  agentOptions: AgentOptions;
  /** How tunnels are opened; its `tls` also verifies origins of https:// requests and https:// upstreams. */
  connect: ConnectThroughOptions;
  /**
   * The PROXY protocol header for a client's connections to upstreams, when upstreams want one. Such connections
   * name one client, so they are pooled per client connection, never shared.
   */
  proxyHeader?: ((client: ClientInfo) => Buffer) | undefined;
}

export class RouteAgents {
  readonly #agents = new Map<string, HttpAgent>();
  readonly #perClient = new WeakMap<ClientInfo, Map<string, HttpAgent>>();
  /** Every per-client agent, so destroy() reaches them (a WeakMap cannot be walked). */
  readonly #clientAgents = new Set<WeakRef<HttpAgent>>();
  readonly #options: RouteAgentOptions;

  constructor(options: RouteAgentOptions) {
    this.#options = options;
  }

  /**
   * The agent for a plain request along an upstream route, and whether the request goes in absolute form
   * (to an HTTP(S) upstream that forwards it) or in origin form (down a tunnel to the origin).
   */
  agentFor(route: UpstreamRoute, scheme: 'http' | 'https', client: ClientInfo): { agent: HttpAgent; absoluteForm: boolean } {
    const viaForward = forwardsInAbsoluteForm(route, scheme);
    const key = `${viaForward ? 'forward' : 'tunnel'}:${scheme}:${route.id}`;
    const header = this.#options.proxyHeader;
    let pool = this.#agents;
    if (header !== undefined) {
      let own = this.#perClient.get(client);
      if (own === undefined) {
        own = new Map();
        this.#perClient.set(client, own);
      }
      pool = own;
    }
    let agent = pool.get(key);
    if (agent === undefined) {
      const { agentOptions } = this.#options;
      const connect = header === undefined ? this.#options.connect : { ...this.#options.connect, proxyHeader: header(client) };
      const tls = connect.tls;
      if (!viaForward) agent = new TunnelAgent(route, scheme === 'https' ? tls : undefined, connect, agentOptions);
      else if (header !== undefined) agent = new ForwardAgent(route, connect, agentOptions);
      else if (route.upstream.protocol === 'https') {
        const host = route.upstream.host;
        const servername = serverNameFor(host);
        agent = new HttpsAgent({ ...agentOptions, ...tls, ...(servername === undefined ? {} : { servername }) });
      } else agent = new HttpAgent(agentOptions);
      pool.set(key, agent);
      if (header !== undefined) this.#remember(agent);
    }
    return { agent, absoluteForm: viaForward };
  }

  #sweepAt = 1024;

  #remember(agent: HttpAgent): void {
    this.#clientAgents.add(new WeakRef(agent));
    if (this.#clientAgents.size < this.#sweepAt) return;
    for (const ref of this.#clientAgents) if (ref.deref() === undefined) this.#clientAgents.delete(ref);
    this.#sweepAt = Math.max(1024, this.#clientAgents.size * 2);
  }

  destroy(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
    for (const ref of this.#clientAgents) ref.deref()?.destroy();
    this.#clientAgents.clear();
  }
}
