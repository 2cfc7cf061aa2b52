/**
 * The admin endpoint: `GET /metrics` in the Prometheus text format, `GET /healthz` (alive) for supervisors and
 * `GET /readyz` (taking new traffic) for load balancers: 503 from the moment a shutdown begins, so a balancer stops
 * sending clients while in-flight requests finish (docs/scaling.md). A separate listener from the proxy's, so it
 * can stay on loopback while the proxy serves a network. In cluster mode the primary serves it and `collect` gathers every worker's metrics (prom-client's
 * AggregatorRegistry), so one scrape sees the whole process group.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export interface MetricsText {
  contentType: string;
  body: string;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  collect(): Promise<MetricsText>;
  /** False once the proxy stopped taking new traffic (shutting down); /readyz answers 503 then. Default: ready. */
  ready?: () => boolean;
  logger: Logger;
}

export interface AdminServer {
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

export function createAdminServer(options: AdminServerOptions): AdminServer {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const ready = options.ready?.() ?? true;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'draining: shutting down\n');
      return;
    }
    options.collect().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : body),
      (err: unknown) => {
        options.logger.error({ err }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${(err as Error).message}\n`);
      },
    );
  });
  // Scrapers keep connections alive between scrapes; none of them may hold shutdown up.
  server.keepAliveTimeout = 5000;
  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
