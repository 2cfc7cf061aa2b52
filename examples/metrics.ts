/**
 * A proxy that exports Prometheus metrics from the library (what `getaway serve --admin 9090` does for you).
 * Run: `npm run build && node dist/examples/metrics.js`, send traffic through http://127.0.0.1:8080, then
 * `curl http://127.0.0.1:9090/metrics`.
 */
import { Registry } from 'prom-client';
import { createLogger, createProxy, flowLog } from '../src/index.js';
import { createAdminServer, metrics, registerProxyMetrics } from '../src/metrics.js';

const logger = createLogger({ level: 'info', pretty: process.stdout.isTTY === true });
const registry = new Registry();
const proxy = createProxy({ port: Number(process.env['PORT'] ?? 8080), logger, addons: [flowLog(), metrics({ registry })] });
registerProxyMetrics(registry, proxy);
await proxy.listen();
const admin = createAdminServer({
  host: '127.0.0.1',
  port: Number(process.env['ADMIN_PORT'] ?? 9090),
  collect: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  logger,
});
const { port } = await admin.listen();
logger.info({ url: proxy.url, metrics: `http://127.0.0.1:${port}/metrics` }, `metrics example listening on ${proxy.url}`);
const stop = (): void => void Promise.all([proxy.close(), admin.close()]).then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
