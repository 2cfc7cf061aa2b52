/**
 * Tunnel downloads are read from the origin into one buffer shared by every tunnel and copied into reused chunks
 * (src/tunnel/origin-reader.ts). A chunk handed back too early, or bytes left in the shared buffer, would show up as
 * corrupted or swapped data when several tunnels run at once and their clients read slowly, so that writes to them
 * stay pending: that is what these tests do, checking every byte.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startProxy, startTcpServer } from '../helpers/servers.js';

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
    const hash = createHash('sha256');
    let head = '';
    let opened = false;
    let length = 0;
    let sinceBreak = 0;
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
      hash.update(body);
      length += body.length;
      sinceBreak += body.length;
      if (sinceBreak >= 1024 * 1024) {
        sinceBreak = 0;
        socket.pause();
        setTimeout(() => socket.resume(), 40);
      }
    });
    socket.on('end', () => resolve({ length, sha256: hash.digest('hex') }));
    socket.on('error', reject);
  });
}

test('several tunnels downloading at once to slow clients each get their own bytes, intact and in order', { timeout: 60_000 }, async (t) => {
  const origin = await startTcpServer(t, servePattern);
  const proxy = await startProxy(t);
  const seeds = [1, 2, 3, 4];
  const results = await Promise.all(seeds.map((seed) => downloadSlowly(proxy.port, origin.port, seed)));
  for (const [index, seed] of seeds.entries()) {
    assert.equal(results[index]!.length, SIZE, `tunnel ${seed}: length`);
    assert.equal(results[index]!.sha256, createHash('sha256').update(pattern(seed)).digest('hex'), `tunnel ${seed}: content`);
  }
});
