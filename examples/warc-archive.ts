/**
 * A proxy that archives everything it relays to WARC files, deduplicated, and closes its files cleanly on
 * SIGINT/SIGTERM. Run: `npm run build && WARC_DIR=./warcs node dist/examples/warc-archive.js`, then
 * `curl -x http://127.0.0.1:8080 http://example.com/` (twice: the second capture is a revisit), stop it with
 * Ctrl-C, and `npx getaway warc index warcs/*.warc.gz` to index what it kept.
 */
import { createLogger, createProxy, warcArchiver } from '../src/index.js';

const logger = createLogger({ level: 'info', pretty: process.stdout.isTTY === true });
const archive = warcArchiver({
  dir: process.env['WARC_DIR'] ?? './warcs',
  dedup: true,
  info: { operator: 'examples/warc-archive', description: 'getaway example capture' },
});
// Opening first: a directory that cannot be written is an error now, not at the first request.
await archive.open();
const proxy = createProxy({ port: Number(process.env['PORT'] ?? 8080), logger, addons: [archive] });
await proxy.listen();
logger.info({ url: proxy.url }, `archiving proxy on ${proxy.url}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void proxy.close().then(() => {
      logger.info(archive.stats(), 'archive closed');
      process.exit(0);
    });
  });
}
