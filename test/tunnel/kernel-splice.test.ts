/**
 * Tunnels whose bytes the kernel moves (tunnel/kernel-splice.ts, native/kernel_splice.c): that plain tunnels are
 * handed over and others are not, that what arrives is exactly what was sent with the flow's counts to match, and
 * that every way a tunnel ends (reset, kill, shutdown) closes both sides and leaves no descriptor behind.
 * The behaviours both copies share (half-close, early bytes, idle timeout, slow readers) are tested for both in
 * connect.test.ts and read-relay.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import * as diagnostics from 'node:diagnostics_channel';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import type { TunnelFlow } from '../../src/index.js';
import { isKernelSpliceAvailable, takeTunnel } from '../../src/tunnel/kernel-splice.js';
import { rawConnect, type RawConnection } from '../helpers/clients.js';
import { startProxy, startTcpServer, waitFor } from '../helpers/servers.js';
import { pattern, sha256 } from '../helpers/tunnel-copies.js';

const CONNECT_OK = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/** Descriptors of this process that are sockets, and that are pipes. */
function openDescriptors(): { sockets: number; pipes: number } {
  let sockets = 0;
  let pipes = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed since the listing
    }
    if (target.startsWith('socket:')) sockets++;
    else if (target.startsWith('pipe:')) pipes++;
  }
  return { sockets, pipes };
}

/** A raw client connection through the proxy at `port`, tunnelled to `originPort` (the 200 already read). */
async function openTunnel(t: TestContext, port: number, originPort: number): Promise<RawConnection> {
  const conn = await rawConnect(port);
  t.after(() => conn.socket.destroy());
  conn.socket.write(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.waitFor(CONNECT_OK);
  return conn;
}

test('the native module is built and loads here (CI builds it at npm ci; without it every tunnel is copied in JavaScript)', () => {
  assert.equal(isKernelSpliceAvailable(), true, 'build/Release/getaway_kernel_splice.node missing or not loadable: run `npm rebuild` with g++ and make installed');
});

test('a worker thread does not get the kernel copy (its set and callback belong to the first thread\'s loop): it copies in JavaScript', async () => {
  assert.equal(isKernelSpliceAvailable(), true);
  const moduleUrl = new URL('../../src/tunnel/kernel-splice.js', import.meta.url).href;
  const worker = new Worker(`import(${JSON.stringify(moduleUrl)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.isKernelSpliceAvailable()))`, { eval: true });
  const [available] = (await once(worker, 'message')) as [boolean];
  await worker.terminate();
  assert.equal(available, false);
});

test('a plain tunnel is handed to the kernel: both directions arrive intact, and the flow counts exactly what each side sent', { timeout: 30_000 }, async (t) => {
  const up = pattern(24 * 1024 * 1024 + 13, 1);
  const down = pattern(16 * 1024 * 1024 + 7, 2);
  const early = Buffer.from('sent with the CONNECT');
  let receivedUp = '';
  const origin = await startTcpServer(t, (socket) => {
    const hash = createHash('sha256');
    let length = 0;
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    socket.on('end', () => (receivedUp = `${length} ${hash.digest('hex')}`));
    socket.end(down);
  });
  const closed: TunnelFlow[] = [];
  const { proxy, port } = await startProxy(t, { addons: [{ name: 'watch', tunnelClosed: (flow) => void closed.push(flow) }] });
  const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  t.after(() => client.destroy());
  const chunks: Buffer[] = [];
  client.on('data', (chunk: Buffer) => chunks.push(chunk));
  client.write(Buffer.concat([Buffer.from(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`), early]));
  client.end(up);
  await new Promise((resolve) => client.once('end', resolve));
  const all = Buffer.concat(chunks);
  assert.equal(all.subarray(0, CONNECT_OK.length).toString('latin1'), CONNECT_OK);
  assert.equal(sha256(all.subarray(CONNECT_OK.length)), sha256(down));
  await waitFor(() => closed.length === 1 && receivedUp !== '', 5000, 'tunnelClosed and the origin\'s end');
  assert.equal(receivedUp, `${early.length + up.length} ${sha256(Buffer.concat([early, up]))}`);
  assert.equal(proxy.stats().tunnelsInKernel, 1);
  assert.equal(closed[0]!.error, undefined);
  assert.equal(closed[0]!.bytes.clientToServer, early.length + up.length);
  assert.equal(closed[0]!.bytes.serverToClient, down.length);
});

test('kernelSplice: false, and tunnels an addon taps, are copied in JavaScript', async (t) => {
  const origin = await startTcpServer(t, (socket) => socket.on('data', (chunk: Buffer) => socket.write(chunk)));
  const cases = [
    { name: 'kernelSplice: false', options: { kernelSplice: false } },
    { name: 'a tapped tunnel', options: { addons: [{ name: 'tap', tunnelOpened: (flow: TunnelFlow) => flow.tapClientToServer({ data: () => undefined }) }] } },
  ];
  for (const { name, options } of cases) {
    const { proxy, port } = await startProxy(t, options);
    const conn = await openTunnel(t, port, origin.port);
    conn.socket.write('echo me');
    await conn.waitFor('echo me');
    assert.equal(proxy.stats().tunnelsInKernel, 0, name);
  }
});

test('an origin that resets mid-transfer closes the client too, and the flow ends with connection_terminated', async (t) => {
  const origin = await startTcpServer(t, (socket) => {
    socket.write(pattern(256 * 1024, 3));
    setTimeout(() => socket.resetAndDestroy(), 50);
  });
  const closed: TunnelFlow[] = [];
  const { proxy, port } = await startProxy(t, { addons: [{ name: 'watch', tunnelClosed: (flow) => void closed.push(flow) }] });
  const conn = await rawConnect(port);
  t.after(() => conn.socket.destroy());
  conn.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.untilEnd(5000);
  await waitFor(() => closed.length === 1, 5000, 'tunnelClosed');
  assert.equal(proxy.stats().tunnelsInKernel, 1);
  assert.equal(closed[0]!.error?.type, 'connection_terminated');
  await waitFor(() => proxy.connections === 0, 5000, 'both sockets closed');
});

test('killing a tunnel the kernel moves closes both sides', async (t) => {
  let originEnded = false;
  const origin = await startTcpServer(t, (socket) => {
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('end', () => (originEnded = true));
  });
  let opened: TunnelFlow | undefined;
  const { proxy, port } = await startProxy(t, { addons: [{ name: 'keep', tunnelOpened: (flow) => void (opened = flow) }] });
  const conn = await openTunnel(t, port, origin.port);
  conn.socket.write('ping');
  await conn.waitFor('ping');
  assert.equal(proxy.stats().tunnelsInKernel, 1);
  opened!.kill();
  await conn.untilEnd(5000);
  await waitFor(() => originEnded, 5000, 'the origin side to close');
  await waitFor(() => proxy.connections === 0, 5000, 'both sockets closed');
});

test('an open kernel tunnel lets go of its Socket objects: they are collected, bytes still flow both ways, and both connections count until it closes', { timeout: 30_000 }, async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const origin = await startTcpServer(t, (socket) => {
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('end', () => socket.end());
  });
  let ended: TunnelFlow | undefined;
  const { proxy, port } = await startProxy(t, { maxConnectionsPerClient: 1, addons: [{ name: 'watch', tunnelClosed: (flow) => void (ended = flow) }] });
  // The proxy's own two sockets: the one it accepted from the client, the one it dialled to the origin.
  const proxySockets: WeakRef<Socket>[] = [];
  const accepted = ({ socket }: { socket: Socket }): void => {
    if (socket.localPort === port) proxySockets.push(new WeakRef(socket));
  };
  const dialled = ({ socket }: { socket: Socket }): void => {
    socket.once('connect', () => {
      if (socket.remotePort === origin.port) proxySockets.push(new WeakRef(socket));
    });
  };
  diagnostics.subscribe('net.server.socket', accepted as (message: unknown) => void);
  diagnostics.subscribe('net.client.socket', dialled as (message: unknown) => void);
  t.after(() => {
    diagnostics.unsubscribe('net.server.socket', accepted as (message: unknown) => void);
    diagnostics.unsubscribe('net.client.socket', dialled as (message: unknown) => void);
  });
  const conn = await openTunnel(t, port, origin.port);
  conn.socket.write('ping');
  await conn.waitFor('ping');
  assert.equal(proxy.stats().tunnelsInKernel, 1);
  assert.equal(proxySockets.length, 2, 'saw the accepted and the dialled socket');
  for (let i = 0; i < 20 && proxySockets.some((ref) => ref.deref() !== undefined); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc();
  }
  assert.deepEqual(proxySockets.map((ref) => ref.deref() === undefined), [true, true], 'both Socket objects collected while the tunnel is open');
  // The connections are still there for the counts and the caps: a second one from this client is past the cap (1).
  assert.equal(proxy.connections, 2);
  const refused = await rawConnect(port);
  t.after(() => refused.socket.destroy());
  refused.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await refused.waitFor('503');
  conn.socket.write('pong');
  await conn.waitFor('pingpong');
  conn.socket.end();
  await conn.untilEnd(5000);
  await waitFor(() => ended !== undefined, 5000, 'the flow to end');
  assert.deepEqual([ended!.bytes.clientToServer, ended!.bytes.serverToClient], [8, 8]);
  await waitFor(() => proxy.connections === 0, 5000, 'both connections no longer counted');
});

test('close() cuts tunnels the kernel moves, and resolves', async (t) => {
  const origin = await startTcpServer(t, (socket) => socket.on('data', (chunk: Buffer) => socket.write(chunk)));
  const { proxy, port } = await startProxy(t);
  const conn = await openTunnel(t, port, origin.port);
  conn.socket.write('ping');
  await conn.waitFor('ping');
  await proxy.close();
  await conn.untilEnd(5000);
  assert.equal(proxy.connections, 0);
});

test('no descriptor outlives its tunnel: sockets are all closed, pipes only pooled', { timeout: 30_000 }, async (t) => {
  const origin = await startTcpServer(t, (socket) => {
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('end', () => socket.end());
  });
  const { proxy, port } = await startProxy(t);
  const before = openDescriptors();
  const TUNNELS = 40;
  await Promise.all(
    Array.from({ length: TUNNELS }, async (_, i) => {
      const conn = await openTunnel(t, port, origin.port);
      const payload = pattern(64 * 1024 * (1 + (i % 4)), i);
      conn.socket.end(payload);
      const all = await conn.untilEnd(10_000);
      assert.equal(sha256(all.subarray(CONNECT_OK.length)), sha256(payload));
      conn.socket.destroy();
    }),
  );
  assert.equal(proxy.stats().tunnelsInKernel, TUNNELS);
  await waitFor(() => proxy.connections === 0, 5000, 'every tunnel closed');
  // Sockets: the test's own clients and the origin's connections close too; what stays is what was open before.
  await waitFor(() => openDescriptors().sockets <= before.sockets, 5000, 'socket descriptors back to where they were');
  // The pool keeps at most 16 pipes (two descriptors each) for later tunnels.
  assert.ok(openDescriptors().pipes - before.pipes <= 32, `pipes held: ${openDescriptors().pipes - before.pipes}`);
});

test('a client that stops reading holds the origin back: the kernel buffers are the only buffer', { timeout: 30_000 }, async (t) => {
  let written = 0;
  let paused = false;
  const origin = await startTcpServer(t, (socket) => {
    const block = pattern(64 * 1024, 4);
    const push = (): void => {
      // Bounded: 256 MiB would be far beyond any socket buffers; back-pressure must stop it long before.
      while (written < 256 * 1024 * 1024) {
        written += block.length;
        if (!socket.write(block)) {
          paused = true;
          socket.once('drain', push);
          return;
        }
      }
    };
    push();
  });
  const { port } = await startProxy(t);
  const client: Socket = connect({ port, host: '127.0.0.1' });
  t.after(() => client.destroy());
  client.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  client.pause();
  await waitFor(() => paused, 5000, 'the origin to meet back-pressure');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const held = written;
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(written, held, 'the origin wrote on while nobody read');
  // Socket buffers on loopback (client receive, proxy send and receive, origin send) stay within tens of MiB.
  assert.ok(held < 64 * 1024 * 1024, `origin got ${held} bytes out with no reader`);
});

/** A connected pair of sockets: [the accepted side, the connecting side]. */
async function socketPair(t: TestContext): Promise<[Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const outer = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [inner] = (await once(server, 'connection')) as [Socket];
  await once(outer, 'connect');
  t.after(() => (outer.destroy(), inner.destroy()));
  return [inner, outer];
}

test('a tunnel socket destroyed behind the tunnel\'s back ends the tunnel, and no descriptor is closed while polled', async (t) => {
  // client ⇄ [a  kernel  b] ⇄ origin, the middle two handed to the kernel directly.
  const [a, client] = await socketPair(t);
  const [b, origin] = await socketPair(t);
  a.pause();
  b.pause();
  const taken = takeTunnel(a, b, undefined, undefined);
  assert.ok(taken !== undefined && 'handle' in taken, 'handed to the kernel');
  const { handle } = taken;
  client.write('ping');
  const [echo] = (await once(origin, 'data')) as [Buffer];
  assert.equal(echo.toString(), 'ping');
  // Nothing in getaway does this (kill and shutdown go through abort()); a stray destroy must not leave the
  // native side polling a closed descriptor that a new connection could be given.
  a.destroy();
  const result = await handle.done;
  assert.equal(result.error?.type, 'connection_terminated');
  assert.equal(result.aToB, 4);
  await Promise.all([once(client, 'end'), once(origin, 'end')]);
  // The descriptor numbers freed here are safe to reuse: new connections carry their own bytes.
  const [c, client2] = await socketPair(t);
  const [d, origin2] = await socketPair(t);
  c.pause();
  d.pause();
  const second = takeTunnel(c, d, undefined, undefined);
  assert.ok(second !== undefined && 'handle' in second);
  origin2.write('pong');
  const [back] = (await once(client2, 'data')) as [Buffer];
  assert.equal(back.toString(), 'pong');
  second.handle.abort(new (await import('../../src/index.js')).ProxyError('connection_terminated', 'test over'));
  await second.handle.done;
});

test('a socket hung up both ways while the other direction waits to write is left alone, not reported on every turn of the loop', { timeout: 30_000 }, async (t) => {
  // client ⇄ [a  kernel  b] ⇄ origin. b→a starts with more early bytes than any socket buffer holds, and the client
  // does not read: that direction waits to write to a and wants nothing from b. The client's FIN is passed on and
  // the origin answers with its own, so b is shut both ways (a hang-up) while it waits for nothing. A hang-up is
  // reported whatever a descriptor is registered for; kept registered, b would wake the loop on every turn.
  const [a, client] = await socketPair(t);
  const [b, origin] = await socketPair(t);
  a.pause();
  b.pause();
  client.pause();
  const early = pattern(32 * 1024 * 1024, 3);
  const taken = takeTunnel(a, b, undefined, early);
  assert.ok(taken !== undefined && 'handle' in taken, 'handed to the kernel');
  const { handle } = taken;
  let fromClient = '';
  origin.on('data', (chunk: Buffer) => (fromClient += chunk.toString()));
  client.end('x');
  await once(origin, 'end');
  origin.end();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const cpuBefore = process.cpuUsage();
  const idle = 1000;
  await new Promise((resolve) => setTimeout(resolve, idle));
  const cpu = process.cpuUsage(cpuBefore);
  const spentMs = (cpu.user + cpu.system) / 1000;
  assert.ok(spentMs < idle / 4, `${spentMs.toFixed(0)} ms of CPU in ${idle} ms while the tunnel waited for the client`);
  const hash = createHash('sha256');
  let received = 0;
  client.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    received += chunk.length;
  });
  client.resume();
  await once(client, 'end');
  assert.equal(received, early.length);
  assert.equal(hash.digest('hex'), sha256(early));
  assert.equal(fromClient, 'x');
  const result = await handle.done;
  assert.equal(result.error, undefined);
  assert.deepEqual([result.aToB, result.bToA], [1, early.length]);
});

test('a kernel tunnel holds two descriptors, its own sockets\', not duplicates of them', async (t) => {
  const origin = await startTcpServer(t, (socket) => socket.on('data', (chunk: Buffer) => socket.write(chunk)));
  const { proxy, port } = await startProxy(t);
  const before = openDescriptors().sockets;
  const TUNNELS = 50;
  const conns = await Promise.all(
    Array.from({ length: TUNNELS }, async () => {
      const conn = await openTunnel(t, port, origin.port);
      conn.socket.write('x');
      await conn.waitFor(`${CONNECT_OK}x`);
      return conn;
    }),
  );
  t.after(() => conns.forEach((conn) => conn.socket.destroy()));
  assert.equal(proxy.stats().tunnelsInKernel, TUNNELS);
  // In this process: each tunnel's client, the proxy's two sockets, and the origin's accepted one.
  const held = openDescriptors().sockets - before;
  assert.ok(held <= 4 * TUNNELS + 4, `${held} socket descriptors for ${TUNNELS} tunnels`);
});
