import { Gauge, type Registry } from 'prom-client';
import { mirroredCounter } from '../addons/metrics.js';
import type { Proxy, ProxyStats } from '../core/proxy.js';

/**
 * The proxy's own state as Prometheus metrics, read when scraped (nothing is counted twice on the request path):
 * open connections and flows, and the counters of `proxy.stats()` for what never became a flow.
 */
export function registerProxyMetrics(registry: Registry, proxy: Proxy): void {
  const registers = [registry];
  new Gauge({ name: 'getaway_client_connections', help: 'Client connections open now', registers, collect() { this.set(proxy.connections); } });
  new Gauge({ name: 'getaway_active_flows', help: 'Requests and tunnels in progress now', registers, collect() { this.set(proxy.activeFlows); } });
  const total = (name: string, help: string, read: (stats: ProxyStats) => number): void =>
    mirroredCounter(registers, name, help, [], () => [[{}, read(proxy.stats())]]);
  total('getaway_connections_accepted_total', 'Client connections accepted', (stats) => stats.connectionsAccepted);
  total('getaway_connections_refused_total', 'Client connections refused over maxConnections or maxConnectionsPerClient', (stats) => stats.connectionsRefused);
  total('getaway_requests_rejected_total', 'Requests answered with an error before they became flows (malformed, over a limit)', (stats) => stats.requestsRejected);
}
