/**
 * A chunked request body is decoded by node:http's server and framed again for the origin (http/origin-exchange.ts):
 * each piece node:http hands over as a chunk of its own, then the last chunk with the client's trailer fields. The
 * origin must get every byte once, in order, and the trailers, whatever the chunk sizes and however slowly it reads.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { test, type TestContext } from 'node:test';
import { startOrigin, startProxy, type StartedOrigin } from '../helpers/servers.js';
import { pattern, sha256 } from '../helpers/tunnel-copies.js';

/**
 * An origin that reads each request body whole and answers with the body's length, its SHA-256, its framing and its
 * trailers as JSON. With `pauseMs`, it waits that long before reading and again after every MiB, so the socket
 * buffers between it and the proxy fill and the proxy's writes wait for it.
 */
function digestingOrigin(t: TestContext, pauseMs = 0): Promise<StartedOrigin> {
  return startOrigin(t, (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    let sincePause = 0;
    const stall = (): void => {
      req.pause();
      setTimeout(() => req.resume(), pauseMs);
    };
    if (pauseMs > 0) stall();
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
      sincePause += chunk.length;
      if (pauseMs > 0 && sincePause >= 1024 * 1024) {
        sincePause = 0;
        stall();
      }
    });
    req.on('end', () =>
      res.end(JSON.stringify({ length, sha256: hash.digest('hex'), framing: req.headers['transfer-encoding'] ?? null, trailers: req.rawTrailers })),
    );
  });
}

interface OriginSaw {
  length: number;
  sha256: string;
  framing: string | null;
  trailers: string[];
}

/** The chunked encoding of `body` cut into `sizes` (repeated until it is all sent), then `trailers`. */
function chunked(body: Buffer, sizes: readonly number[], trailers = ''): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0, i = 0; at < body.length; i++) {
    const piece = body.subarray(at, at + sizes[i % sizes.length]!);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
    at += piece.length;
  }
  parts.push(Buffer.from(`0\r\n${trailers}\r\n`));
  return Buffer.concat(parts);
}

/**
 * Sends each of `uploads` (a chunked body) as a POST on one connection, written in 100 KiB pieces so the chunks'
 * framing falls anywhere in the proxy's reads, and resolves with what the origin said of each.
 */
async function postChunked(t: TestContext, proxyPort: number, url: string, uploads: readonly Buffer[]): Promise<OriginSaw[]> {
  const socket = connect(proxyPort, '127.0.0.1');
  t.after(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = Buffer.alloc(0);
  const answers: OriginSaw[] = [];
  const nextAnswer = (): Promise<OriginSaw> =>
    new Promise((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        received = Buffer.concat([received, chunk]);
        const text = received.toString('latin1');
        const headEnd = text.indexOf('\r\n\r\n');
        if (headEnd === -1) return;
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(text.slice(0, headEnd))?.[1]);
        if (received.length < headEnd + 4 + length) return;
        socket.off('data', onData);
        socket.off('close', onClose);
        const answer = received.subarray(headEnd + 4, headEnd + 4 + length).toString();
        received = received.subarray(headEnd + 4 + length);
        resolve(JSON.parse(answer) as OriginSaw);
      };
      const onClose = (): void => reject(new Error(`connection closed before an answer: ${received.toString('latin1').slice(0, 200)}`));
      socket.on('data', onData);
      socket.once('close', onClose);
    });
  const host = new URL(url).host;
  for (const upload of uploads) {
    const answered = nextAnswer();
    socket.write(`POST ${url} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    for (let at = 0; at < upload.length; at += 100 * 1024) socket.write(upload.subarray(at, at + 100 * 1024));
    answers.push(await answered);
  }
  return answers;
}

test('chunked uploads with chunks of every size reach the origin whole, with their trailers, on one kept-alive connection', { timeout: 30_000 }, async (t) => {
  const origin = await digestingOrigin(t);
  const { port, proxy } = await startProxy(t);
  const body = pattern(3 * 1024 * 1024 + 5, 11);
  // One byte, around 8 KiB and a 64 KiB read, and longer than a read.
  const sizes = [1, 100, 4095, 8191, 8192, 8193, 65536, 70_000, 300_000];
  const answers = await postChunked(t, port, `${origin.url}/`, [
    chunked(body, sizes, 'X-Checksum: abc\r\nX-Count: 9\r\n'),
    chunked(body.subarray(0, 1000), [7]),
    chunked(Buffer.alloc(0), [1]),
  ]);
  assert.deepEqual(answers[0], { length: body.length, sha256: sha256(body), framing: 'chunked', trailers: ['X-Checksum', 'abc', 'X-Count', '9'] });
  assert.deepEqual(answers[1], { length: 1000, sha256: sha256(body.subarray(0, 1000)), framing: 'chunked', trailers: [] });
  assert.deepEqual(answers[2], { length: 0, sha256: sha256(Buffer.alloc(0)), framing: 'chunked', trailers: [] });
  assert.equal(proxy.connections, 1, 'the client kept one connection for all three');
  assert.equal(proxy.stats().requestBodiesInKernel, 0);
});

test('a chunked upload to an origin that reads slowly: every chunk reaches it whole, in order', { timeout: 30_000 }, async (t) => {
  // The origin stalls for 100 ms at first and after each MiB, so the proxy's writes wait in its socket while the
  // client's next chunks are framed. Chunks under the socket's high-water mark (16 KiB) leave a write pending without
  // the proxy pausing; a framing that reused a buffer before its write completed (tried in the ninth session, with
  // pooled buffers) fails here.
  const origin = await digestingOrigin(t, 100);
  const { port } = await startProxy(t);
  const first = pattern(12 * 1024 * 1024, 3);
  const second = pattern(2 * 1024 * 1024 + 17, 4);
  const answers = await postChunked(t, port, `${origin.url}/`, [chunked(first, [12_345, 9000, 65536]), chunked(second, [262_144, 10_000])]);
  assert.deepEqual(answers, [
    { length: first.length, sha256: sha256(first), framing: 'chunked', trailers: [] },
    { length: second.length, sha256: sha256(second), framing: 'chunked', trailers: [] },
  ]);
});
