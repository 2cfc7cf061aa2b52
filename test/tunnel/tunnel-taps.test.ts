/**
 * Taps on spliced bytes: CONNECT tunnels (tapClientToServer / tapServerToClient) and upgraded connections (the
 * HTTP flow's request and response taps after the 101). Each direction's tap sees exactly the bytes relayed,
 * the CONNECT's early bytes first, hears `end` at that direction's FIN (half-close still works), holds the
 * stream back when it is slow, and hears `abort` when the connection is cut.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import type { BodyTap, TunnelFlow } from '../../src/index.js';
import { rawConnect } from '../helpers/clients.js';
import { startProxy, startTcpServer, waitFor } from '../helpers/servers.js';

interface Seen { hash: ReturnType<typeof createHash>; bytes: number; outcome: 'pending' | 'end' | 'abort'; sha256?: string }

function hashingTap(delayMs = 0): { tap: BodyTap; seen: Seen } {
  const seen: Seen = { hash: createHash('sha256'), bytes: 0, outcome: 'pending' };
  return {
    seen,
    tap: {
      data(chunk) {
        seen.hash.update(chunk);
        seen.bytes += chunk.length;
        return delayMs > 0 ? new Promise((resolve) => setTimeout(resolve, delayMs)) : undefined;
      },
      end() {
        seen.sha256 = seen.hash.digest('hex');
        seen.outcome = 'end';
      },
      abort() {
        seen.outcome = 'abort';
      },
    },
  };
}

/** A masked client text frame (RFC 6455 §5.2), short payloads only. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!))]);
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

function pattern(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) bytes.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return bytes;
}

/** Opens a CONNECT tunnel through the proxy; resolves with the socket once the 200 arrived, plus any early bytes sent. */
function openTunnel(proxyPort: number, target: number, early = Buffer.alloc(0)): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: proxyPort, host: '127.0.0.1', allowHalfOpen: true });
    socket.once('error', reject);
    socket.write(Buffer.concat([Buffer.from(`CONNECT 127.0.0.1:${target} HTTP/1.1\r\nHost: 127.0.0.1:${target}\r\n\r\n`), early]));
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.removeListener('data', onData);
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      socket.pause();
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.resume();
  });
}

test('tunnel taps see each direction exactly, early bytes first, and end at each FIN while half-close keeps working', async (t) => {
  const early = Buffer.from('sent with the CONNECT head;');
  const upload = pattern(4 * 1024 * 1024, 1);
  const download = pattern(2 * 1024 * 1024, 2);
  let serverGot = Buffer.alloc(0);
  const server = await startTcpServer(t, (socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Answers only after the client's FIN: the client's half-close must reach it while its own direction stays open.
    socket.once('end', () => {
      serverGot = Buffer.concat(chunks);
      socket.end(download);
    });
  });
  const up = hashingTap();
  const down = hashingTap();
  const closed: TunnelFlow[] = [];
  const { port } = await startProxy(t, { addons: [{ name: 'tap', connect(flow) {
    flow.tapClientToServer(up.tap);
    flow.tapServerToClient(down.tap);
  }, tunnelClosed: (flow) => void closed.push(flow) }] });
  const socket = await openTunnel(port, server.port, early);
  t.after(() => socket.destroy());
  socket.end(upload);
  const received = await readAll(socket);
  assert.equal(sha256(received), sha256(download));
  assert.equal(sha256(serverGot), sha256(Buffer.concat([early, upload])));
  await waitFor(() => closed.length === 1);
  assert.deepEqual([up.seen.outcome, up.seen.bytes, up.seen.sha256], ['end', early.length + upload.length, sha256(Buffer.concat([early, upload]))]);
  assert.deepEqual([down.seen.outcome, down.seen.bytes, down.seen.sha256], ['end', download.length, sha256(download)]);
  assert.equal(closed[0]!.bytes.clientToServer, early.length + upload.length);
});

test('a slow tunnel tap holds the server back (bounded lead), and a cut tunnel gives its taps abort', async (t) => {
  const size = 32 * 1024 * 1024;
  let serverWritten = 0;
  let maxLead = 0;
  const down = hashingTap(2);
  const server = await startTcpServer(t, (socket) => {
    const chunk = Buffer.alloc(64 * 1024, 3);
    const pump = (): void => {
      while (serverWritten < size && !socket.destroyed) {
        serverWritten += chunk.length;
        maxLead = Math.max(maxLead, serverWritten - down.seen.bytes);
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
  const { port } = await startProxy(t, { addons: [{ name: 'tap', tunnelOpened: (flow) => flow.tapServerToClient(down.tap) }] });
  const socket = await openTunnel(port, server.port);
  socket.resume();
  await waitFor(() => down.seen.bytes > 4 * 1024 * 1024, 15_000, 'the tap to see 4 MiB');
  t.diagnostic(`server ahead of the tap by at most ${(maxLead / 1048576).toFixed(1)} MiB`);
  assert.ok(maxLead < 16 * 1024 * 1024, `the server ran ${maxLead} bytes ahead of the tap`);
  socket.destroy();
  await waitFor(() => down.seen.outcome !== 'pending', 5000, 'the tap to hear how it ended');
  assert.equal(down.seen.outcome, 'abort');
});

test('an upgraded (WebSocket) connection: the flow\'s request and response taps see the frames both ways', async (t) => {
  const httpServer = createServer();
  const wss = new WebSocketServer({ server: httpServer });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo ${String(data)}`)));
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
  });
  const originPort = (httpServer.address() as AddressInfo).port;
  const up = hashingTap();
  const down = hashingTap();
  const ended: Array<{ requestBody: number; responseBody: number }> = [];
  const { port } = await startProxy(t, { addons: [{ name: 'tap', requestHeaders(flow) {
    flow.tapRequestBody(up.tap);
    flow.tapResponseBody(down.tap);
  }, response: (flow) => void ended.push({ ...flow.bytes }) }] });
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://127.0.0.1:${originPort}/ HTTP/1.1\r\nHost: 127.0.0.1:${originPort}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  await conn.waitFor('\r\n\r\n');
  for (const text of ['one', 'two', 'three']) conn.socket.write(maskedTextFrame(text));
  await conn.waitFor('echo three');
  conn.socket.end(Buffer.from([0x88, 0x80, 0, 0, 0, 0])); // a close frame, then FIN
  await conn.untilEnd();
  await waitFor(() => ended.length === 1, 5000, 'the upgraded flow to end');
  assert.equal(up.seen.bytes, 3 * 9 + 6 + 2, 'three masked frames of 3–5 bytes, the close frame');
  assert.equal(up.seen.bytes, ended[0]!.requestBody);
  assert.equal(down.seen.bytes, ended[0]!.responseBody);
  assert.ok(up.seen.bytes > 0 && down.seen.bytes > 0);
  assert.deepEqual([up.seen.outcome, down.seen.outcome], ['end', 'end']);
});
