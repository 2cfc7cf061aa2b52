/**
 * `serve --admin`: the metrics registry of a serving process and the admin endpoint. Loaded only when --admin is
 * given, so prom-client stays out of every other proxy's heap.
 *
 * One process: its registry is served directly. `--workers N`: each worker keeps its own registry and answers
 * the primary's requests for it over the cluster IPC channel; the primary serves the sum (prom-client's
 * AggregatorRegistry: counters and histograms add up, gauges too unless the metric says otherwise).
 */
import cluster from 'node:cluster';
import { AggregatorRegistry, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import { createAdminServer, type AdminServer, type MetricsText } from '../admin/admin-server.js';
import { registerArchiveMetrics, registerProxyMetrics } from '../admin/proxy-metrics.js';
import type { WarcArchiver } from '../addons/warc-archiver.js';
import { metrics } from '../addons/metrics.js';
import type { Addon } from '../core/addon.js';
import type { Proxy } from '../core/proxy.js';
import { formatAuthority } from '../http/request-target.js';

export interface ServingMetrics {
  addon: Addon;
  /** Registers the proxy's own gauges and counters (and the archive's, if it archives), read at scrape time. */
  observe(proxy: Proxy, archive?: WarcArchiver): void;
  collect(): Promise<MetricsText>;
}

export function createServingMetrics(): ServingMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  if (cluster.isWorker) {
    AggregatorRegistry.setRegistries([registry]);
    // Constructing one installs prom-client's worker-side listener for the primary's requests.
    new AggregatorRegistry();
  }
  return {
    addon: metrics({ registry }),
    observe: (proxy, archive) => {
      registerProxyMetrics(registry, proxy);
      if (archive !== undefined) registerArchiveMetrics(registry, archive);
    },
    collect: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}

/** The primary's view: every live worker's metrics, summed at each scrape. */
export function createClusterCollector(): () => Promise<MetricsText> {
  const aggregator = new AggregatorRegistry();
  return async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() });
}

export async function startAdminServer(
  address: { host: string; port: number },
  collect: () => Promise<MetricsText>,
  ready: () => boolean,
  logger: Logger,
): Promise<AdminServer> {
  const admin = createAdminServer({ ...address, collect, ready, logger });
  const bound = await admin.listen().catch((err: NodeJS.ErrnoException) => {
    // Keeps the code, so the CLI reports it like a proxy port in use, and says which listener failed.
    throw Object.assign(new Error(`admin endpoint: ${err.message}`), { code: err.code });
  });
  const url = `http://${formatAuthority(bound.address, bound.port)}`;
  logger.info({ admin: url, port: bound.port }, `admin endpoint on ${url}/metrics`);
  return admin;
}
