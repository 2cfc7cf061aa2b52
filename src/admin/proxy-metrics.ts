import { Counter, Gauge, type Registry } from 'prom-client';
import type { Proxy, ProxyStats } from '../core/proxy.js';

/**
 * The proxy's own state as Prometheus metrics, read when scraped (nothing is counted twice on the request path):
 * open connections and flows, and the counters of `proxy.stats()` for what never became a flow.
 */
export function registerProxyMetrics(registry: Registry, proxy: Proxy): void {
  const registers = [registry];
  new Gauge({ name: 'getaway_client_connections', help: 'Client connections open now', registers, collect() { this.set(proxy.connections); } });
  new Gauge({ name: 'getaway_active_flows', help: 'Requests and tunnels in progress now', registers, collect() { this.set(proxy.activeFlows); } });
  // prom-client counters have no set(): a counter that mirrors a total resets and adds it at each scrape.
  const total = (name: string, help: string, read: (stats: ProxyStats) => number): void =>
    void new Counter({ name, help, registers, collect() { this.reset(); this.inc(read(proxy.stats())); } });
  total('getaway_connections_accepted_total', 'Client connections accepted', (stats) => stats.connectionsAccepted);
  total('getaway_connections_refused_total', 'Client connections refused over maxConnections or maxConnectionsPerClient', (stats) => stats.connectionsRefused);
  total('getaway_requests_rejected_total', 'Requests answered with an error before they became flows (malformed, over a limit)', (stats) => stats.requestsRejected);
}
