import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { ClientInfo } from '../core/connection.js';
import type { Dialer, GuardedResolver } from './dialer.js';
import type { OriginPool } from './origin-pool.js';
import type { OriginTlsOptions } from './origin-tls.js';
import type { RouteAgents } from './route-agents.js';
import type { RoutePlanner } from './route-planner.js';


/** How handlers reach origins: routes, dialling, pooled agents and the TLS trust for the origin leg. */
export interface OriginAccess {
  readonly dialer: Dialer;
  /** Name resolution for direct connections, with the flow's destination checks on every answer. */
  readonly resolver: GuardedResolver;
  /** Where requests and tunnels go (direct or upstream proxies) and in which failover order. */
  readonly routes: RoutePlanner;
  /** Pooled agents for plain requests through upstream proxies. */
  readonly routeAgents: RouteAgents;
  /** node:http's agent for plain-HTTP origins, where the direct exchange cannot run (no `_http_common` parser). */
  readonly httpAgent: HttpAgent;
  /** Keep-alive connections for the direct exchange (http/origin-exchange.ts) to plain-HTTP origins. */
  readonly originPool: OriginPool;
  readonly httpsAgent: HttpsAgent;
  /** How origins' TLS certificates are verified: system store (+ caBundle), unless insecureUpstreamTls. */
  readonly originTls: OriginTlsOptions;
  /** The PROXY protocol header a client's connections to upstream proxies begin with, when configured. */
  readonly upstreamProxyHeader: ((client: ClientInfo) => Buffer) | undefined;
}
