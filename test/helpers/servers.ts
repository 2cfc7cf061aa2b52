/**
 * Test fixtures as one-liners: each test builds its own proxy and origins on 127.0.0.1:0 and registers their
 * cleanup with t.after(), so nothing is shared between tests and nothing outlives one.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { createProxy, type Proxy, type ProxyOptions } from '../../src/index.js';
import type { TestCertificates } from './test-ca.js';

export interface StartedProxy {
  proxy: Proxy;
  url: string;
  port: number;
}

export async function startProxy(t: TestContext, options: ProxyOptions = {}): Promise<StartedProxy> {
  const proxy = createProxy({ host: '127.0.0.1', port: 0, ...options });
  const address = await proxy.listen();
  t.after(() => proxy.close());
  return { proxy, url: proxy.url, port: address.port };
}

/** Keeps every accepted socket so close() can cut keep-alive connections instead of waiting for them. */
function trackSockets(server: Server | NetServer): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return sockets;
}

async function listen(t: TestContext, server: Server | NetServer): Promise<number> {
  const sockets = trackSockets(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

export interface StartedOrigin {
  server: Server;
  port: number;
  /** http://127.0.0.1:port */
  url: string;
}

export async function startOrigin(
  t: TestContext,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<StartedOrigin> {
  const server = createServer(handler);
  const port = await listen(t, server);
  return { server, port, url: `http://127.0.0.1:${port}` };
}

export async function startTlsOrigin(
  t: TestContext,
  certs: TestCertificates,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<StartedOrigin> {
  const server = createHttpsServer({ key: certs.leafKey, cert: certs.leafCert }, handler);
  const port = await listen(t, server);
  return { server, port, url: `https://localhost:${port}` };
}

/**
 * A raw TCP server for wire-level tests (echo, server-first banners, half-close). Sockets are allowHalfOpen, so a
 * handler decides what a FIN means; one that should behave like most servers ends on `end`.
 */
export async function startTcpServer(t: TestContext, onSocket: (socket: Socket) => void): Promise<{ port: number; server: NetServer }> {
  const server = createNetServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    onSocket(socket);
  });
  const port = await listen(t, server);
  return { port, server };
}

/** Answers with `block` repeated until `totalBytes` (a multiple of its length), with Content-Length and back-pressure. */
export function sendRepeated(res: ServerResponse, block: Buffer, totalBytes: number): void {
  res.setHeader('Content-Length', String(totalBytes));
  writeRepeated(res, block, totalBytes);
}

/** Writes `block` repeated until `totalBytes` (a multiple of its length) into `stream`, with back-pressure, then ends it. */
export function writeRepeated(stream: Writable, block: Buffer, totalBytes: number): void {
  let sent = 0;
  const more = (): void => {
    while (sent < totalBytes) {
      sent += block.length;
      if (!stream.write(block)) return void stream.once('drain', more);
    }
    stream.end();
  };
  more();
}

/** Resolves once `predicate` holds, polling every few ms; rejects after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
