/**
 * A client that stops sending its request body is cut off after requestBodyIdleTimeoutMs (408, connection closed,
 * the origin's request aborted); a body held back because the origin reads slowly is not the client's pause.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, waitFor } from '../helpers/servers.js';

test('a request body that stops arriving gets 408 after requestBodyIdleTimeoutMs; nothing is left open', async (t) => {
  let originAborted = false;
  const origin = await startOrigin(t, (req, res) => {
    req.resume();
    req.on('close', () => (originAborted = !req.complete));
    req.on('end', () => res.end('complete'));
  });
  const { port, proxy, url } = await startProxy(t, { requestBodyIdleTimeoutMs: 200 });
  const conn = await rawConnect(port);
  const began = Date.now();
  conn.socket.write(`POST ${origin.url}/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789`);
  const text = (await conn.untilEnd(5000)).toString('latin1');
  const elapsed = Date.now() - began;
  assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/, text);
  assert.match(text, /Proxy-Status: getaway; error=http_request_error; details="client sent no request body bytes for 200 ms"/);
  assert.match(text, /\r\nConnection: close\r\n/i);
  assert.ok(elapsed >= 180 && elapsed < 3000, `cut after ${elapsed} ms`);
  await waitFor(() => originAborted, 3000, 'the origin request to be aborted');
  await waitFor(() => proxy.connections === 0, 3000, 'connections to be released');
  assert.equal((await curl(['-x', url, `${origin.url}/`])).stdout, 'complete');
});

test('a body trickled faster than the timeout goes through, however long it takes in all', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => res.end(`got ${length}`));
  });
  const { port } = await startProxy(t, { requestBodyIdleTimeoutMs: 200 });
  const conn = await rawConnect(port);
  conn.socket.write(`POST ${origin.url}/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n`);
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 80));
    conn.socket.write('x');
  }
  assert.match(await conn.waitFor('got 8'), /^HTTP\/1\.1 200 /);
  conn.socket.destroy();
});

test('a body held back by an origin that reads slowly is not timed out as the client\'s pause', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    // Not reading for longer than the body timeout: back-pressure reaches the client through the proxy.
    req.pause();
    setTimeout(() => {
      let length = 0;
      req.on('data', (chunk: Buffer) => (length += chunk.length));
      req.on('end', () => res.end(`got ${length}`));
      req.resume();
    }, 800);
  });
  const { port } = await startProxy(t, { requestBodyIdleTimeoutMs: 200 });
  const size = 16 * 1024 * 1024;
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no answer: ${text}`)), 15_000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes(`got ${size}`)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
    socket.write(`POST ${origin.url}/upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
    socket.end(Buffer.alloc(size, 0x61));
  });
  assert.match(answer, /^HTTP\/1\.1 200 /, answer.slice(0, 300));
});
