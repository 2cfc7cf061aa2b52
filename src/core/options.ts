/**
 * The settings the core and its handlers run by, resolved (every default filled in). The full option set, with
 * upstreams, routes and interception, is config/options.ts's ResolvedProxyOptions, which extends this; the core
 * and addons see only this part, so nothing in core depends on how the rest is configured.
 */
export interface CoreOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  requestHeadersTimeoutMs: number;
  idleTimeoutMs: number;
  responseTimeoutMs: number;
  requestBodyIdleTimeoutMs: number;
  tunnelIdleTimeoutMs: number;
  shutdownGraceMs: number;
  maxRequestTargetBytes: number;
  maxHeaderBytes: number;
  maxHeaderCount: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
  maxTunnels: number;
  /** Plain tunnels' and large plain-HTTP bodies' bytes moved by the kernel where it can (tunnel/kernel-splice.ts). */
  kernelSplice: boolean;
}
