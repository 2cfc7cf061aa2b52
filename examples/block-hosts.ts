/**
 * An addon that refuses requests and tunnels to a list of hosts (and their subdomains), answering 403 from the
 * proxy itself. Run: `npm run build && node dist/examples/block-hosts.js`, then
 * `curl -x http://127.0.0.1:8080 http://ads.example/` → 403.
 */
import { createProxy, flowLog, HeaderList, createLogger, type Addon } from '../src/index.js';

export function blockHosts(blocked: readonly string[]): Addon {
  const isBlocked = (host: string): boolean => blocked.some((name) => host === name || host.endsWith(`.${name}`));
  const refusal = () => ({
    status: 403,
    headers: new HeaderList(['Content-Type', 'text/plain; charset=utf-8']),
    body: 'blocked by getaway\n',
  });
  return {
    name: 'block-hosts',
    requestHeaders(flow) {
      if (isBlocked(flow.request.host)) flow.response = refusal();
    },
    connect(flow) {
      if (isBlocked(flow.target.host)) {
        flow.action = 'deny';
        flow.response = refusal();
      }
    },
  };
}

const logger = createLogger({ level: 'info', pretty: process.stdout.isTTY === true });
const proxy = createProxy({
  port: Number(process.env['PORT'] ?? 8080),
  logger,
  addons: [flowLog(), blockHosts(['ads.example', 'tracker.example'])],
});
await proxy.listen();
logger.info({ url: proxy.url }, `block-hosts example listening on ${proxy.url}`);
process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
process.once('SIGINT', () => void proxy.close().then(() => process.exit(0)));
