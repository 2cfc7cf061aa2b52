/**
 * Plain-HTTP origin connections read into one buffer shared by all of them (src/upstream/origin-pool.ts), and the
 * direct exchange (src/http/origin-exchange.ts) copies each read out, into pooled chunks when nothing taps the body
 * and into Buffers of the taps' own when something does. Bytes kept as a view instead of copied, or a chunk reused
 * before its write completed, would come out corrupted or swapped once several responses stream at once to clients
 * that read slowly (their chunks wait in memory while the shared buffer is reused): these tests run exactly that,
 * with bodies that differ per response and position, untapped and tapped, and check every byte.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { test } from 'node:test';
import type { Addon } from '../../src/index.js';
import { startOrigin, startProxy } from '../helpers/servers.js';
import { slowDigest } from '../helpers/slow-reader.js';

const SIZE = 8 * 1024 * 1024;

/** Taps on both bodies that hash what they see, so a tapped flow's copies are checked too. */
const tapBoth: Addon = {
  name: 'tap-both',
  requestHeaders(flow) {
    flow.tapRequestBody({ data: () => {} });
    const hash = createHash('sha256');
    flow.tapResponseBody({ data: (chunk) => void hash.update(chunk), end: () => void tapDigests.push(hash.digest('hex')) });
  },
};
const tapDigests: string[] = [];
/** Untapped Content-Length bodies are moved by the kernel where they can be (kernel-body.test.ts), or copied here. */
const PATHS: Array<{ name: string; addons: Addon[]; kernelSplice: boolean }> = [
  { name: 'untapped', addons: [], kernelSplice: true },
  { name: 'untapped, copied in JavaScript', addons: [], kernelSplice: false },
  { name: 'tapped', addons: [tapBoth], kernelSplice: true },
];

function pattern(seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(SIZE);
  for (let i = 0; i < SIZE; i += 4) bytes.writeUInt32LE(((i >>> 2) * 2654435761 + seed * 40503) >>> 0, i);
  return bytes;
}

/** GETs through the proxy on a keep-alive agent and reads slowly: a pause every MiB. */
function getSlowly(proxyPort: number, url: string): Promise<{ status: number; length: number; sha256: string; trailer: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { host: new URL(url).host } }, (res: IncomingMessage) => {
      const digest = slowDigest(res, 30);
      res.on('data', (chunk: Buffer) => digest.take(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ...digest.result(), trailer: res.trailers['x-digest'] }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

for (const path of PATHS) {
  test(`${path.name}: concurrent big responses (Content-Length and chunked, with trailers) to slow clients arrive intact, over reused origin connections`, { timeout: 60_000 }, async (t) => {
    const bodies = new Map([1, 2, 3, 4].map((seed) => [seed, pattern(seed)]));
    const digest = (seed: number): string => createHash('sha256').update(bodies.get(seed)!).digest('hex');
    const connectionHeaders = new Set<string | undefined>();
    const origin = await startOrigin(t, (req, res) => {
      connectionHeaders.add(req.headers.connection);
      const [, kind, seedText] = req.url!.split('/');
      const body = bodies.get(Number(seedText))!;
      if (kind === 'chunked') {
        res.writeHead(200, { 'Transfer-Encoding': 'chunked', Trailer: 'X-Digest' });
        // Uneven chunk sizes, so chunk boundaries fall everywhere within the proxy's reads.
        let offset = 0;
        let size = 1000;
        const next = (): void => {
          while (offset < body.length) {
            const piece = body.subarray(offset, offset + size);
            offset += piece.length;
            size = (size * 7 + 13) % 200_000 + 1;
            if (!res.write(piece)) return void res.once('drain', next);
          }
          res.addTrailers({ 'X-Digest': createHash('sha256').update(body).digest('hex') });
          res.end();
        };
        next();
        return;
      }
      res.writeHead(200, { 'Content-Length': body.length });
      res.end(body);
    });
    const proxy = await startProxy(t, { addons: path.addons, kernelSplice: path.kernelSplice });
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        [1, 2, 3, 4].map((seed) => getSlowly(proxy.port, `${origin.url}/${seed % 2 === 0 ? 'chunked' : 'length'}/${seed}`)),
      );
      for (const [index, result] of results.entries()) {
        const seed = index + 1;
        assert.equal(result.status, 200);
        assert.equal(result.length, SIZE, `response ${seed}, round ${round}: length`);
        assert.equal(result.sha256, digest(seed), `response ${seed}, round ${round}: content`);
        if (seed % 2 === 0) assert.equal(result.trailer, digest(seed), `response ${seed}: trailer`);
      }
    }
    // node:http's client would have said keep-alive: the direct exchange carried every request.
    assert.deepEqual([...connectionHeaders], [undefined]);
    // Only untapped bodies, and only where allowed, are moved by the kernel (the Content-Length ones here).
    assert.equal(proxy.proxy.stats().bodiesInKernel > 0, path.addons.length === 0 && path.kernelSplice);
    if (path.name === 'tapped') {
      assert.deepEqual(tapDigests.splice(0).sort(), [1, 2, 3, 4, 1, 2, 3, 4].map(digest).sort(), 'what the taps saw');
    }
  });

  test(`${path.name}: many small keep-alive responses interleaved with a big one keep their own bytes`, { timeout: 60_000 }, async (t) => {
    const big = pattern(9);
    const origin = await startOrigin(t, (req, res) => {
      if (req.url === '/big') res.end(big);
      else res.end(`small ${req.url}`);
    });
    const proxy = await startProxy(t, { addons: path.addons, kernelSplice: path.kernelSplice });
    const bigDone = getSlowly(proxy.port, `${origin.url}/big`);
    const small = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        new Promise<string>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: proxy.port, path: `${origin.url}/${i}` }, (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString()));
            res.on('end', () => resolve(text));
          });
          req.on('error', reject);
          req.end();
        }),
      ),
    );
    small.forEach((text, i) => assert.equal(text, `small /${i}`));
    const result = await bigDone;
    assert.equal(result.sha256, createHash('sha256').update(big).digest('hex'));
  });

  test(`${path.name}: the bytes an origin sent that could not be parsed stay on the flow's error, intact after later reads`, { timeout: 30_000 }, async (t) => {
    const { startTcpServer } = await import('../helpers/servers.js');
    const broken = await startTcpServer(t, (socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 2x0 Not-A-Status\r\nX-Marker: broken-origin\r\n\r\n'));
    });
    const big = pattern(11);
    const healthy = await startOrigin(t, (_req, res) => res.end(big));
    let failure: Error | undefined;
    const proxy = await startProxy(t, { kernelSplice: path.kernelSplice, addons: [...path.addons, { name: 'keep-error', error: (flow) => void (failure = flow.error) }] });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxy.port, path: `http://127.0.0.1:${broken.port}/` }, (res) => (res.resume(), resolve(res.statusCode ?? 0)));
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 502);
    // Many reads into the shared buffer after the failure.
    const after = await getSlowly(proxy.port, `${healthy.url}/`);
    assert.equal(after.sha256, createHash('sha256').update(big).digest('hex'));
    const packet = (failure?.cause as { rawPacket?: unknown } | undefined)?.rawPacket;
    assert.ok(Buffer.isBuffer(packet), 'the unparsed bytes went with the error');
    assert.match(packet.toString('latin1'), /X-Marker: broken-origin/);
  });
}
