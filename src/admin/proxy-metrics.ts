import { Counter, Gauge, type Registry } from 'prom-client';
import type { Proxy } from '../core/proxy.js';

/**
 * The proxy's own state as Prometheus metrics, read when scraped (nothing is counted twice on the request path):
 * open connections and flows, and the counters of `proxy.stats()` for what never became a flow.
 */
export function registerProxyMetrics(registry: Registry, proxy: Proxy): void {
  const registers = [registry];
  new Gauge({ name: 'getaway_client_connections', help: 'Client connections open now', registers, collect() { this.set(proxy.connections); } });
  new Gauge({ name: 'getaway_active_flows', help: 'Requests and tunnels in progress now', registers, collect() { this.set(proxy.activeFlows); } });
  new Counter({ name: 'getaway_connections_accepted_total', help: 'Client connections accepted', registers, collect() { this.reset(); this.inc(proxy.stats().connectionsAccepted); } });
  new Counter({ name: 'getaway_connections_refused_total', help: 'Client connections refused over maxConnections or maxConnectionsPerClient', registers, collect() { this.reset(); this.inc(proxy.stats().connectionsRefused); } });
  new Counter({ name: 'getaway_requests_rejected_total', help: 'Requests answered with an error before they became flows (malformed, over a limit)', registers, collect() { this.reset(); this.inc(proxy.stats().requestsRejected); } });
}
