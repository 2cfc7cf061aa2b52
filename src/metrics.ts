/**
 * `getaway/metrics`: Prometheus metrics and the admin endpoint. A subpath of its own so that importing `getaway`
 * does not load prom-client for proxies that export no metrics (see docs/performance.md on the start-up heap).
 */
export { metrics, type MetricsOptions } from './addons/metrics.js';
export { registerProxyMetrics } from './admin/proxy-metrics.js';
export { createAdminServer, type AdminServer, type AdminServerOptions, type MetricsText } from './admin/admin-server.js';
