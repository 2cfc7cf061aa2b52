/**
 * A hook can answer with a stream body (a cache hit of 1 GiB must not be a buffer): sent as read, with
 * back-pressure, framed by the core (the hook's Content-Length, else chunked), and a stream that breaks or
 * under-delivers breaks the connection instead of looking complete.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { HeaderList, type HttpFlow } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startProxy, waitFor } from '../helpers/servers.js';

const CHUNK = 64 * 1024;

/** `total` bytes of a fixed pattern, generated on demand; `produced` says how far the generator got. */
function generated(total: number): { stream: Readable; produced: () => number; sha256: string } {
  let produced = 0;
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const hash = createHash('sha256');
  for (let i = 0; i < total; i += CHUNK) hash.update(chunk.subarray(0, Math.min(CHUNK, total - i)));
  const stream = new Readable({
    read() {
      if (produced >= total) return void this.push(null);
      const piece = chunk.subarray(0, Math.min(CHUNK, total - produced));
      produced += piece.length;
      this.push(piece);
    },
  });
  return { stream, produced: () => produced, sha256: hash.digest('hex') };
}

function answering(make: () => Readable | AsyncIterable<Uint8Array>, headers: string[] = []) {
  return { name: 'answer', requestHeaders(flow: HttpFlow) {
    flow.response = { status: 200, headers: new HeaderList(['Content-Type', 'application/octet-stream', ...headers]), body: make() };
  } };
}

test('a 64 MiB stream body reaches the client whole and chunked, with no Content-Length of the hook', async (t) => {
  const size = 64 * 1024 * 1024;
  let last: ReturnType<typeof generated> | undefined;
  const { url } = await startProxy(t, { addons: [answering(() => (last = generated(size)).stream)] });
  const result = await curl(['-x', url, '-s', '-D', '-', '-o', '/dev/null', '-w', '%{size_download}', 'http://cache.example/big'], 30_000);
  assert.match(result.stdout, /\r\nTransfer-Encoding: chunked\r\n/i);
  assert.match(result.stdout, new RegExp(`${size}$`));
  assert.equal(last!.produced(), size);
});

test('a stream body with the hook\'s Content-Length is framed by it; sha256 matches at the client', async (t) => {
  const size = 3 * 1024 * 1024 + 17;
  let expected = '';
  const { url } = await startProxy(t, { addons: [answering(() => {
    const g = generated(size);
    expected = g.sha256;
    return g.stream;
  }, ['Content-Length', String(size)])] });
  const file = join(mkdtempSync(join(tmpdir(), 'getaway-stream-')), 'body.bin');
  const result = await curl(['-x', url, '-s', '-D', '-', '-o', file, 'http://cache.example/exact']);
  assert.match(result.stdout, new RegExp(`\\r\\nContent-Length: ${size}\\r\\n`, 'i'));
  assert.doesNotMatch(result.stdout, /Transfer-Encoding/i);
  const received = readFileSync(file);
  assert.equal(received.length, size);
  assert.equal(createHash('sha256').update(received).digest('hex'), expected);
});

test('back-pressure: a client that does not read holds the stream back (the proxy reads a few MiB ahead at most)', async (t) => {
  const size = 256 * 1024 * 1024;
  let last: ReturnType<typeof generated> | undefined;
  const { port } = await startProxy(t, { addons: [answering(() => (last = generated(size)).stream)] });
  const socket = connect({ port, host: '127.0.0.1' });
  t.after(() => socket.destroy());
  socket.pause();
  socket.write('GET http://cache.example/slow HTTP/1.1\r\nHost: cache.example\r\n\r\n');
  await waitFor(() => last !== undefined && last.produced() > 0, 3000, 'the stream to start');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const ahead = last!.produced();
  t.diagnostic(`produced ${(ahead / 1048576).toFixed(1)} MiB while the client read nothing`);
  assert.ok(ahead < 32 * 1024 * 1024, `the stream ran ${ahead} bytes ahead of a client that reads nothing`);
});

test('a stream that yields fewer bytes than its Content-Length, or fails, breaks the connection instead of ending the response', async (t) => {
  const flows: HttpFlow[] = [];
  const failing = async function* (): AsyncIterable<Uint8Array> {
    yield Buffer.from('the start');
    throw new Error('cache file vanished');
  };
  const { port } = await startProxy(t, {
    addons: [
      { name: 'answer', requestHeaders(flow) {
        const short = flow.request.path === '/short';
        flow.response = { status: 200, headers: new HeaderList(short ? ['Content-Length', '100'] : []), body: short ? Readable.from([Buffer.from('only ten b')]) : failing() };
      }, error: (flow) => void flows.push(flow as HttpFlow) },
    ],
  });
  for (const path of ['/short', '/failing']) {
    const conn = await rawConnect(port);
    conn.socket.write(`GET http://cache.example${path} HTTP/1.1\r\nHost: cache.example\r\n\r\n`);
    const text = (await conn.untilEnd()).toString('latin1');
    // The head may or may not have left before the failure; what must never arrive is a response that looks whole.
    if (text !== '') assert.match(text, /^HTTP\/1\.1 200 /, path);
    assert.ok(!/\r\n0\r\n\r\n$/.test(text), `${path}: a chunked body must not end cleanly: ${JSON.stringify(text)}`);
    if (path === '/short') assert.ok(text.endsWith('only ten b'), 'the short body, then the connection closed');
  }
  await waitFor(() => flows.length === 2);
});

test('HEAD gets the stream\'s head only, and the stream is released', async (t) => {
  let last: ReturnType<typeof generated> | undefined;
  const { url } = await startProxy(t, { addons: [answering(() => (last = generated(1024 * 1024)).stream, ['Content-Length', String(1024 * 1024)])] });
  const result = await curl(['-x', url, '-s', '-I', 'http://cache.example/head']);
  assert.match(result.stdout, /^HTTP\/1\.1 200 /);
  assert.match(result.stdout, /\r\nContent-Length: 1048576\r\n/i);
  await waitFor(() => last!.stream.destroyed, 3000, 'the stream to be destroyed');
});

test('a stream body cannot answer a CONNECT: the flow fails closed with 500', async (t) => {
  const { port } = await startProxy(t, { addons: [{ name: 'deny', connect(flow) {
    flow.action = 'deny';
    flow.response = { status: 403, headers: new HeaderList(), body: Readable.from([Buffer.from('no')]) };
  } }] });
  const conn = await rawConnect(port);
  conn.socket.write('CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n');
  const text = (await conn.untilEnd()).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 500 /);
  assert.match(text, /a stream body can answer a plain request only/);
});
