import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Dialer } from './dialer.js';
import type { RouteAgents } from './route-agents.js';
import type { RoutePlanner } from './route-planner.js';

/** Spread into every TLS connection to an origin or upstream. `ca: undefined` keeps Node's default store. */
export interface OriginTlsOptions {
  /** Trust anchors when a caBundle is configured (system roots + bundle). */
  ca: string[] | undefined;
  rejectUnauthorized: boolean;
}

/** How handlers reach origins: routes, dialling, pooled agents and the TLS trust for the origin leg. */
export interface OriginAccess {
  readonly dialer: Dialer;
  /** Where requests and tunnels go (direct or upstream proxies) and in which failover order. */
  readonly routes: RoutePlanner;
  /** Pooled agents for plain requests through upstream proxies. */
  readonly routeAgents: RouteAgents;
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  /** How origins' TLS certificates are verified: system store (+ caBundle), unless insecureUpstreamTls. */
  readonly originTls: OriginTlsOptions;
}
