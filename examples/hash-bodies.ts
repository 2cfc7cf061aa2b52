/**
 * An addon that hashes every body as it streams through the proxy (sha256 of the request body sent and of the
 * response body received, as relayed: content coding kept), without holding any body in memory, and logs one
 * line per flow. The audit report's "sha256 of what was pulled" is this. Run:
 * `npm run build && node dist/examples/hash-bodies.js`, then `curl -x http://127.0.0.1:8080 http://example.com/`.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { createLogger, createProxy, type Addon, type BodyTap } from '../src/index.js';

/** A tap that hashes what passes; `done` gets the digest, or `undefined` when the body broke (truncated). */
function hashingTap(done: (sha256: string | undefined, bytes: number) => void): BodyTap {
  const hash = createHash('sha256');
  let bytes = 0;
  return {
    data(chunk) {
      hash.update(chunk);
      bytes += chunk.length;
    },
    end: () => done(hash.digest('hex'), bytes),
    abort: () => done(undefined, bytes),
  };
}

export function hashBodies(): Addon {
  let logger: Logger | undefined;
  return {
    name: 'hash-bodies',
    running(context) {
      logger = context.logger.child({ addon: 'hash-bodies' });
    },
    requestHeaders(flow) {
      const url = `${flow.request.scheme}://${flow.request.host}:${flow.request.port}${flow.request.path}`;
      flow.tapRequestBody(hashingTap((sha256, bytes) => void (flow.metadata['requestSha256'] = sha256 ?? `truncated after ${bytes} bytes`)));
      flow.tapResponseBody(
        hashingTap((sha256, bytes) => {
          flow.metadata['responseSha256'] = sha256;
          if (sha256 === undefined) logger?.warn({ flowId: flow.id, url, bytes }, 'response body broke: no hash');
          else logger?.info({ flowId: flow.id, url, bytes, sha256, requestSha256: flow.metadata['requestSha256'] }, 'hashed');
        }),
      );
    },
  };
}

const logger = createLogger({ level: 'info', pretty: process.stdout.isTTY === true });
const proxy = createProxy({ port: Number(process.env['PORT'] ?? 8080), logger, addons: [hashBodies()] });
await proxy.listen();
logger.info({ url: proxy.url }, `hash-bodies example listening on ${proxy.url}`);
process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
process.once('SIGINT', () => void proxy.close().then(() => process.exit(0)));
