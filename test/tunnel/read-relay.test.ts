/**
 * Both directions of a tunnel are read into one buffer shared by every tunnel and copied into reused chunks
 * (src/tunnel/read-relay.ts): downloads from the origin socket dialled with `onread`, uploads from the client's
 * accepted socket switched over to it. A chunk handed back too early, or bytes left in the shared buffer, would show
 * up as corrupted or swapped data when several tunnels run at once and their receivers read slowly, so that writes
 * to them stay pending: that is what these tests do, checking every byte.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { ReadRelay } from '../../src/tunnel/read-relay.js';
import { startProxy, startTcpServer, waitFor } from '../helpers/servers.js';
import { slowDigest } from '../helpers/slow-reader.js';
import { assertCopiedBy, TUNNEL_COPIES } from '../helpers/tunnel-copies.js';

const CONNECT_OK = 'HTTP/1.1 200 Connection Established\r\n\r\n';
const SIZE = 12 * 1024 * 1024;

/** Bytes that differ per tunnel and per position, so a chunk from another tunnel or another offset is caught. */
function pattern(seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(SIZE);
  for (let i = 0; i < SIZE; i += 4) bytes.writeUInt32LE(((i >>> 2) * 2654435761 + seed * 40503) >>> 0, i);
  return bytes;
}

/** Sends the pattern for the seed the client names in its first line, respecting back-pressure, then ends. */
function servePattern(socket: Socket): void {
  let line = '';
  socket.on('data', function onData(chunk: Buffer) {
    line += chunk.toString('latin1');
    if (!line.includes('\n')) return;
    socket.off('data', onData);
    const bytes = pattern(Number(line.trim()));
    let offset = 0;
    const write = (): void => {
      while (offset < bytes.length) {
        const piece = bytes.subarray(offset, offset + 256 * 1024);
        offset += piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', write);
          return;
        }
      }
      socket.end();
    };
    write();
  });
}

/** Opens a tunnel, asks for `seed`'s pattern and reads it slowly: 1 MiB, then a pause, until the origin ends. */
function downloadSlowly(proxyPort: number, originPort: number, seed: number): Promise<{ length: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: proxyPort, host: '127.0.0.1' });
    const digest = slowDigest(socket);
    let head = '';
    let opened = false;
    socket.on('connect', () => socket.write(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: x\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      let body = chunk;
      if (!opened) {
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        assert.ok(head.startsWith(CONNECT_OK), head);
        opened = true;
        body = chunk.subarray(Buffer.byteLength(CONNECT_OK, 'latin1'));
        socket.write(`${seed}\n`);
      }
      digest.take(body);
    });
    socket.on('end', () => resolve(digest.result()));
    socket.on('error', reject);
  });
}

for (const copy of TUNNEL_COPIES) {
  test(`${copy.name}: several tunnels downloading at once to slow clients each get their own bytes, intact and in order`, { timeout: 60_000 }, async (t) => {
    const origin = await startTcpServer(t, servePattern);
    const proxy = await startProxy(t, copy.options);
    const seeds = [1, 2, 3, 4];
    const results = await Promise.all(seeds.map((seed) => downloadSlowly(proxy.port, origin.port, seed)));
    for (const [index, seed] of seeds.entries()) {
      assert.equal(results[index]!.length, SIZE, `tunnel ${seed}: length`);
      assert.equal(results[index]!.sha256, createHash('sha256').update(pattern(seed)).digest('hex'), `tunnel ${seed}: content`);
    }
    assertCopiedBy(proxy.proxy, copy);
  });
}

/** Reads what a tunnel uploads, slowly (a pause per MiB), and answers its length and digest when the client ends. */
function receiveSlowly(socket: Socket): void {
  const digest = slowDigest(socket);
  socket.on('data', (chunk: Buffer) => digest.take(chunk));
  // The client's FIN reaches the origin through the tunnel while the way back stays open (half-close).
  socket.on('end', () => {
    const { length, sha256 } = digest.result();
    socket.end(`${length} ${sha256}`);
  });
}

/** Opens a tunnel, sends `seed`'s pattern (with its first bytes in the CONNECT's own packet), half-closes, reads the answer. */
function upload(proxyPort: number, originPort: number, seed: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: proxyPort, host: '127.0.0.1' });
    const bytes = pattern(seed);
    const early = 1000;
    let head = '';
    let answer = '';
    let opened = false;
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: x\r\n\r\n`), bytes.subarray(0, early)])));
    socket.on('data', (chunk: Buffer) => {
      if (opened) {
        answer += chunk.toString('latin1');
        return;
      }
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      assert.ok(head.startsWith(CONNECT_OK), head);
      opened = true;
      socket.end(bytes.subarray(early));
    });
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

for (const copy of TUNNEL_COPIES) {
  test(`${copy.name}: several tunnels uploading at once to slow origins each deliver their own bytes, intact, in order, then half-close`, { timeout: 60_000 }, async (t) => {
    const origin = await startTcpServer(t, receiveSlowly);
    const proxy = await startProxy(t, copy.options);
    const seeds = [5, 6, 7, 8];
    const answers = await Promise.all(seeds.map((seed) => upload(proxy.port, origin.port, seed)));
    for (const [index, seed] of seeds.entries()) {
      assert.equal(answers[index], `${SIZE} ${createHash('sha256').update(pattern(seed)).digest('hex')}`, `tunnel ${seed}`);
    }
    assertCopiedBy(proxy.proxy, copy);
  });
}

test('an accepted socket is switched to the relay\'s reads (what the stream had buffered stays the caller\'s); a TLS socket is refused', async (t) => {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const sink = createServer({ allowHalfOpen: true });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  t.after(() => sink.close());
  const received = new Promise<Buffer>((resolve) =>
    sink.once('connection', (socket: Socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => resolve(Buffer.concat(chunks)));
    }),
  );
  const client = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
  t.after(() => client.destroy());
  const [accepted] = (await once(server, 'connection')) as [Socket];
  const towardsSink = connect({ port: (sink.address() as AddressInfo).port, host: '127.0.0.1' });
  await once(towardsSink, 'connect');
  t.after(() => (towardsSink.destroy(), accepted.destroy()));
  const relay = new ReadRelay();
  assert.equal(relay.adoptAccepted(accepted), true);
  assert.equal(relay.source, accepted);
  assert.equal(relay.adoptAccepted(accepted), false, 'a socket that already reads through onread is left alone');
  accepted.once('end', () => towardsSink.end());
  relay.start(towardsSink);
  const bytes = pattern(9).subarray(0, 3 * 1024 * 1024);
  client.end(bytes);
  assert.ok((await received).equals(bytes), 'every byte, in order, and the FIN after them');

  const { TLSSocket } = await import('node:tls');
  const plain = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
  t.after(() => plain.destroy());
  const [second] = (await once(server, 'connection')) as [Socket];
  const tls = new TLSSocket(second, { isServer: true });
  t.after(() => (tls.destroy(), second.destroy()));
  assert.equal(new ReadRelay().adoptAccepted(tls), false);
});

for (const copy of TUNNEL_COPIES) {
  test(`${copy.name}: a CONNECT sent with its payload and FIN in one packet gets the origin\'s answer, and both sockets close`, { timeout: 10_000 }, async (t) => {
    // The FIN was read, and 'end' emitted, before the tunnel began: the upload direction must end at once.
    const origin = await startTcpServer(t, (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).toString('latin1')}`));
    });
    const proxy = await startProxy(t, copy.options);
    const client = connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
    t.after(() => client.destroy());
    let answer = '';
    client.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    client.end(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\npayload`);
    await once(client, 'end');
    assert.equal(answer, `${CONNECT_OK}got payload`);
    await waitFor(() => proxy.proxy.connections === 0, 5000, 'the proxy to close both sockets');
    assertCopiedBy(proxy.proxy, copy);
  });
}
