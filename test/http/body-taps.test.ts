/**
 * Body taps: an addon sees request and response bodies as they stream, byte for byte what was relayed, with
 * back-pressure (a slow tap slows the transfer, the proxy holds no more than a few chunks), and hears `abort`
 * instead of `end` when a body breaks.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { BodyTap, HttpFlow } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';

interface Seen {
  sha256: string;
  bytes: number;
  outcome: 'end' | 'abort' | 'pending';
}

/** A tap that hashes what it sees; `delayMs` makes it a slow consumer (a disk). */
function hashingTap(delayMs = 0): { tap: BodyTap; seen: Seen } {
  const hash = createHash('sha256');
  const seen: Seen = { sha256: '', bytes: 0, outcome: 'pending' };
  const tap: BodyTap = {
    data(chunk) {
      hash.update(chunk);
      seen.bytes += chunk.length;
      if (delayMs > 0) return new Promise((resolve) => setTimeout(resolve, delayMs));
      return undefined;
    },
    end() {
      seen.sha256 = hash.digest('hex');
      seen.outcome = 'end';
    },
    abort() {
      seen.outcome = 'abort';
    },
  };
  return { tap, seen };
}

function pattern(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) bytes.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return bytes;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

for (const framing of ['content-length', 'chunked'] as const) {
  test(`a response tap sees exactly the origin's body (${framing}, 24 MiB), and the response hook runs after its end`, async (t) => {
    const body = pattern(24 * 1024 * 1024, framing.length);
    const origin = await startOrigin(t, (_req, res) => {
      if (framing === 'content-length') res.setHeader('Content-Length', body.length);
      for (let i = 0; i < body.length; i += 1 << 20) res.write(body.subarray(i, i + (1 << 20)));
      res.end();
    });
    const { tap, seen } = hashingTap();
    let atResponse: Seen['outcome'] | undefined;
    const { url } = await startProxy(t, { addons: [{ name: 'tap', requestHeaders: (flow) => flow.tapResponseBody(tap), response: () => void (atResponse = seen.outcome) }] });
    const result = await curl(['-x', url, '-s', '-o', '/dev/null', '-w', '%{size_download}', `${origin.url}/big`]);
    assert.equal(result.stdout, String(body.length));
    await waitFor(() => atResponse !== undefined);
    assert.equal(atResponse, 'end');
    assert.deepEqual(seen, { sha256: sha256(body), bytes: body.length, outcome: 'end' });
  });
}

test('a response tap sees the content coding as sent (gzip stays gzip); a tap added in responseHeaders works too', async (t) => {
  const compressed = gzipSync(Buffer.from('hello '.repeat(1000)));
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'Content-Encoding': 'gzip', 'Transfer-Encoding': 'chunked' });
    res.end(compressed);
  });
  const { tap, seen } = hashingTap();
  const { url } = await startProxy(t, { addons: [{ name: 'tap', responseHeaders: (flow) => flow.tapResponseBody(tap) }] });
  await curl(['-x', url, '-s', '-o', '/dev/null', origin.url]);
  await waitFor(() => seen.outcome !== 'pending');
  assert.deepEqual(seen, { sha256: sha256(compressed), bytes: compressed.length, outcome: 'end' });
});

test('HEAD and 304 responses give a tap only end', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/304') res.writeHead(304).end();
    else res.writeHead(200, { 'Content-Length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const taps: Seen[] = [];
  const { url } = await startProxy(t, { addons: [{ name: 'tap', requestHeaders(flow) {
    const { tap, seen } = hashingTap();
    taps.push(seen);
    flow.tapResponseBody(tap);
  } }] });
  await curl(['-x', url, '-s', '-I', origin.url]);
  await curl(['-x', url, '-s', `${origin.url}/304`]);
  await waitFor(() => taps.length === 2 && taps.every((s) => s.outcome !== 'pending'));
  assert.deepEqual(taps.map((s) => [s.bytes, s.outcome]), [[0, 'end'], [0, 'end']]);
});

for (const framing of ['content-length', 'chunked'] as const) {
  test(`a request tap sees exactly the uploaded body (${framing}, 8 MiB), as the origin receives it`, async (t) => {
    const body = pattern(8 * 1024 * 1024, 7);
    let received = '';
    const origin = await startOrigin(t, (req, res) => {
      const hash = createHash('sha256');
      req.on('data', (chunk: Buffer) => hash.update(chunk));
      req.on('end', () => {
        received = hash.digest('hex');
        res.end('stored');
      });
    });
    const { tap, seen } = hashingTap();
    const { url } = await startProxy(t, { addons: [{ name: 'tap', requestHeaders: (flow) => flow.tapRequestBody(tap) }] });
    const headers = framing === 'chunked' ? ['-H', 'Transfer-Encoding: chunked'] : [];
    const file = join(mkdtempSync(join(tmpdir(), 'getaway-tap-')), 'body.bin');
    writeFileSync(file, body);
    const result = await curl(['-x', url, '-s', ...headers, '--data-binary', `@${file}`, `${origin.url}/up`], 30_000);
    assert.equal(result.stdout, 'stored', result.stderr);
    assert.equal(received, sha256(body));
    assert.deepEqual(seen, { sha256: sha256(body), bytes: body.length, outcome: 'end' });
  });
}

test('a slow tap slows the transfer instead of filling memory: the origin is held back', async (t) => {
  const size = 48 * 1024 * 1024;
  let originWritten = 0;
  let maxLead = 0;
  const { tap, seen } = hashingTap(2);
  const origin = await startOrigin(t, (_req, res) => {
    res.setHeader('Content-Length', size);
    const chunk = Buffer.alloc(64 * 1024, 1);
    const pump = (): void => {
      while (originWritten < size) {
        originWritten += chunk.length;
        maxLead = Math.max(maxLead, originWritten - seen.bytes);
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const { url } = await startProxy(t, { addons: [{ name: 'slow-tap', requestHeaders: (flow) => flow.tapResponseBody(tap) }] });
  // Stops early: what matters is how far the origin got ahead of the tap while it streamed.
  const result = await curl(['-x', url, '-s', '-o', '/dev/null', '--max-filesize', String(size), `${origin.url}/`], 8_000);
  t.diagnostic(`origin ahead of the tap by at most ${(maxLead / 1048576).toFixed(1)} MiB; tap saw ${(seen.bytes / 1048576).toFixed(1)} MiB (curl ${result.code})`);
  assert.ok(seen.bytes > 4 * 1024 * 1024, 'the tap saw a good part of the body');
  assert.ok(maxLead < 16 * 1024 * 1024, `the origin ran ${maxLead} bytes ahead of the tap`);
});

test('a response that breaks mid-body gives the tap abort, never end', async (t) => {
  const { port: originPort } = await startTcpServer(t, (socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly a part'));
  });
  const { tap, seen } = hashingTap();
  const flows: HttpFlow[] = [];
  const { url } = await startProxy(t, { addons: [{ name: 'tap', requestHeaders: (flow) => flow.tapResponseBody(tap), error: (flow) => void flows.push(flow as HttpFlow) }] });
  await curl(['-x', url, '-s', `http://127.0.0.1:${originPort}/`]);
  await waitFor(() => flows.length === 1);
  assert.equal(seen.outcome, 'abort');
  assert.equal(seen.bytes, 'only a part'.length);
});

test('a request that fails before any body moved gives its taps abort', async (t) => {
  const { tap: requestTap, seen: requestSeen } = hashingTap();
  const { tap: responseTap, seen: responseSeen } = hashingTap();
  const { url } = await startProxy(t, { addons: [{ name: 'tap', requestHeaders(flow) {
    flow.tapRequestBody(requestTap);
    flow.tapResponseBody(responseTap);
  } }] });
  const result = await curl(['-x', url, '-s', '-o', '/dev/null', '-w', '%{http_code}', '--data', 'x', 'http://127.0.0.1:1/']);
  assert.equal(result.stdout, '502');
  await waitFor(() => responseSeen.outcome !== 'pending');
  assert.equal(requestSeen.outcome, 'abort');
  assert.equal(responseSeen.outcome, 'abort');
});

test('a tap that throws fails the flow closed: a request tap before the response (500), a response tap by cutting the connection', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    req.resume();
    req.on('end', () => res.end('x'.repeat(1000)));
  });
  const broken: BodyTap = { data() {
    throw new Error('disk full');
  } };
  const { url, port } = await startProxy(t, { addons: [{ name: 'broken', requestHeaders(flow) {
    if (flow.request.path === '/upload') flow.tapRequestBody(broken);
    else flow.tapResponseBody(broken);
  } }] });
  const upload = await curl(['-x', url, '-s', '-i', '--data', 'payload', `${origin.url}/upload`]);
  assert.match(upload.stdout, /^HTTP\/1\.1 500 /);
  assert.match(upload.stdout, /error=proxy_internal_error; details="a body tap failed in data: disk full"/);
  const conn = await rawConnect(port);
  conn.socket.write(`GET ${origin.url}/download HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = (await conn.untilEnd()).toString('latin1');
  // The head was already committed, so no status can say it: the connection closes without a complete response.
  assert.ok(!text.includes('x'.repeat(1000)), 'the body did not arrive complete');
  assert.doesNotMatch(text, /^HTTP\/1\.1 500 /);
});

test('the flow keeps the origin\'s response head as received and the address actually dialled', async (t) => {
  const { port: originPort } = await startTcpServer(t, (socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 203 Fine By Me\r\nX-B: 2\r\nConnection: x-gone, close\r\nX-Gone: 1\r\nx-a: 1\r\nContent-Length: 2\r\n\r\nok'));
  });
  const flows: HttpFlow[] = [];
  const { url } = await startProxy(t, { addons: [{ name: 'record', response: (flow) => void flows.push(flow) }] });
  assert.equal((await curl(['-x', url, '-s', `http://127.0.0.1:${originPort}/`])).stdout, 'ok');
  await waitFor(() => flows.length === 1);
  const { receivedResponse, upstreamConnection, response } = flows[0]!;
  assert.equal(receivedResponse?.status, 203);
  assert.equal(receivedResponse?.reason, 'Fine By Me');
  assert.equal(receivedResponse?.httpVersion, '1.1');
  assert.deepEqual(receivedResponse?.headers.toJSON(), [['X-B', '2'], ['Connection', 'x-gone, close'], ['X-Gone', '1'], ['x-a', '1'], ['Content-Length', '2']]);
  assert.ok(!response!.headers.has('x-gone') && response!.headers.has('via'), 'what was sent differs from what was received');
  assert.deepEqual(upstreamConnection, { remoteAddress: '127.0.0.1', remotePort: originPort });
});
