import { Gauge, type Registry } from 'prom-client';
import { mirroredCounter } from '../addons/metrics.js';
import type { Proxy, ProxyStats } from '../core/proxy.js';
import type { WarcArchiver, WarcArchiverStats } from '../addons/warc-archiver.js';

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
  total('getaway_tunnels_in_kernel_total', 'Tunnels and upgraded connections whose bytes the kernel moved (splice)', (stats) => stats.tunnelsInKernel);
  total('getaway_bodies_in_kernel_total', 'Plain-HTTP response bodies whose rest the kernel moved from origin to client (splice)', (stats) => stats.bodiesInKernel);
  total('getaway_request_bodies_in_kernel_total', 'Plain-HTTP request bodies whose rest the kernel moved from client to origin (splice)', (stats) => stats.requestBodiesInKernel);
}

/** The WARC archive's counters: records and bytes written, failures, dropped records, and whether it fails now. */
export function registerArchiveMetrics(registry: Registry, archive: WarcArchiver): void {
  const registers = [registry];
  const total = (name: string, help: string, read: (stats: WarcArchiverStats) => number): void =>
    mirroredCounter(registers, name, help, [], () => [[{}, read(archive.stats())]]);
  total('getaway_warc_records_total', 'WARC records written (revisits included)', (stats) => stats.records);
  total('getaway_warc_bytes_total', 'Bytes written to WARC files (after gzip)', (stats) => stats.bytes);
  total('getaway_warc_files_total', 'WARC files completed and renamed from .open', (stats) => stats.filesClosed);
  total('getaway_warc_revisits_total', 'Exchanges stored as revisit records because their payload was archived before', (stats) => stats.revisits);
  total('getaway_warc_write_errors_total', 'Writes to WARC files that failed (full disk, file size limit, I/O error)', (stats) => stats.writeErrors);
  total('getaway_warc_records_dropped_total', 'WARC records not written because writing failed', (stats) => stats.recordsDropped);
  new Gauge({ name: 'getaway_warc_failing', help: '1 while WARC writing fails and records are dropped', registers, collect() { this.set(archive.stats().failing ? 1 : 0); } });
}
