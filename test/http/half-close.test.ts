/**
 * A client that half-closes (FIN) right after its request still gets the whole response, then the connection
 * closes (RFC 9112 §9.6). node:http on its own aborts the in-flight request on that FIN.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startOrigin, startProxy, waitFor } from '../helpers/servers.js';

function sendAndHalfClose(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of the response: ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`));
    }, 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', reject);
    socket.end(request);
  });
}

test('a GET followed by FIN gets a slow origin\'s response, then the connection closes', async (t) => {
  const origin = await startOrigin(t, (_req, res) => void setTimeout(() => res.end('late but whole'), 200));
  const { port, proxy } = await startProxy(t);
  const text = await sendAndHalfClose(port, `GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nlate but whole$/);
  await waitFor(() => proxy.connections === 0, 3000, 'the connection to close');
});

test('a 16 MiB upload followed by FIN gets its response', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => res.end(`got ${length}`));
  });
  const { port } = await startProxy(t);
  const size = 16 * 1024 * 1024;
  const head = Buffer.from(`POST ${origin.url}/up HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  const text = await sendAndHalfClose(port, Buffer.concat([head, Buffer.alloc(size, 0x61)]));
  assert.match(text, new RegExp(`\\r\\n\\r\\ngot ${size}$`));
});
