/**
 * An addon that answers some requests itself from a stream, the way a cache answers a hit: the body is read as
 * the client takes it (back-pressure), never held whole, and the core frames it (Content-Length given here).
 * Requests for http://generated.example/<bytes> get that many bytes of a generated pattern; everything else is
 * proxied as usual. Run: `npm run build && node dist/examples/answer-from-stream.js`, then
 * `curl -x http://127.0.0.1:8080 http://generated.example/1048576 | wc -c`.
 */
import { Readable } from 'node:stream';
import { createLogger, createProxy, HeaderList, type Addon } from '../src/index.js';

/** `total` bytes of 'getaway ' repeated, produced a chunk at a time as the stream is read. */
export function patternStream(total: number): Readable {
  const chunk = Buffer.alloc(64 * 1024, 'getaway ');
  let left = total;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const piece = chunk.subarray(0, Math.min(chunk.length, left));
      left -= piece.length;
      this.push(piece);
    },
  });
}

const MAX_GENERATED_BYTES = 4 * 1024 ** 3;

export function answerFromStream(host: string): Addon {
  return {
    name: 'answer-from-stream',
    requestHeaders(flow) {
      if (flow.request.host !== host) return;
      const size = Number(flow.request.path.slice(1));
      if (!Number.isSafeInteger(size) || size < 0 || size > MAX_GENERATED_BYTES) {
        flow.response = { status: 404, headers: new HeaderList(['Content-Type', 'text/plain']), body: `ask for /<bytes>, at most ${MAX_GENERATED_BYTES}\n` };
        return;
      }
      flow.response = {
        status: 200,
        headers: new HeaderList(['Content-Type', 'application/octet-stream', 'Content-Length', String(size), 'X-Answered-By', 'answer-from-stream']),
        body: patternStream(size),
      };
    },
  };
}

const logger = createLogger({ level: 'info', pretty: process.stdout.isTTY === true });
const proxy = createProxy({ port: Number(process.env['PORT'] ?? 8080), logger, addons: [answerFromStream('generated.example')] });
await proxy.listen();
logger.info({ url: proxy.url }, `answer-from-stream example listening on ${proxy.url}`);
process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
process.once('SIGINT', () => void proxy.close().then(() => process.exit(0)));
