/**
 * An addon that adds a header to every outbound request, rewrites a response header, and uses the logger from
 * its context (no globals). Run: `npm run build && node dist/examples/stamp-requests.js`.
 */
import type { Logger } from 'pino';
import { createLogger, createProxy, type Addon } from '../src/index.js';

export function stampRequests(tag: string): Addon {
  let logger: Logger | undefined;
  return {
    name: 'stamp-requests',
    running(context) {
      logger = context.logger.child({ addon: 'stamp-requests' });
    },
    requestHeaders(flow) {
      flow.request.headers.set('X-Getaway-Tag', tag);
    },
    responseHeaders(flow) {
      flow.response?.headers.set('X-Getaway-Seen', `${flow.request.method} ${flow.request.host}`);
    },
    response(flow) {
      logger?.info({ flowId: flow.id, status: flow.response?.status }, 'stamped');
    },
  };
}

const logger = createLogger({ level: 'info', pretty: process.stdout.isTTY === true });
const proxy = createProxy({ port: Number(process.env['PORT'] ?? 8080), logger, addons: [stampRequests('example')] });
await proxy.listen();
logger.info({ url: proxy.url }, `stamp-requests example listening on ${proxy.url}`);
process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
process.once('SIGINT', () => void proxy.close().then(() => process.exit(0)));
