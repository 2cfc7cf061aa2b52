/**
 * A slow reader never makes the proxy buffer without bound, in either direction, for plain HTTP, tunnels and
 * upgrades: the writer offers 1 GiB as fast as back-pressure lets it, the reader takes a trickle, and the proxy
 * (the real CLI, in its own process) is sampled from /proc while it runs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { rawConnect } from './helpers/clients.js';
import { startCliProxy } from './helpers/cli-process.js';
import { startOrigin, startTcpServer, waitFor } from './helpers/servers.js';

const GIB = 1024 * 1024 * 1024;
const CHUNK = Buffer.alloc(256 * 1024, 'z');
const RUN_MS = 2500;
const LIMIT_MIB = 48;

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/** Writes up to 1 GiB as fast as the destination drains, stopping when told. */
function pump(write: (chunk: Buffer) => boolean, onDrain: (resume: () => void) => void): { stop(): void; sent(): number } {
  let sent = 0;
  let stopped = false;
  const go = (): void => {
    while (!stopped && sent < GIB) {
      sent += CHUNK.length;
      if (!write(CHUNK)) {
        onDrain(go);
        return;
      }
    }
  };
  setImmediate(go);
  return { stop: () => void (stopped = true), sent: () => sent };
}

/** Reads about 800 KiB/s from a paused stream (a socket, or a request body). */
function trickle(socket: Readable): { stop(): void; received(): number } {
  let received = 0;
  socket.pause();
  const timer = setInterval(() => {
    let budget = 16 * 1024;
    let chunk: Buffer | null;
    while (budget > 0 && (chunk = socket.read(Math.min(budget, socket.readableLength || budget)) as Buffer | null) !== null) {
      received += chunk.length;
      budget -= chunk.length;
    }
  }, 20);
  return { stop: () => clearInterval(timer), received: () => received };
}

async function measure(t: TestContext, pid: number, run: () => Promise<{ stop(): void; moved(): number }>): Promise<void> {
  const baseline = rssKiB(pid);
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(pid))), 25);
  const scenario = await run();
  await new Promise((resolve) => setTimeout(resolve, RUN_MS));
  clearInterval(sampler);
  scenario.stop();
  const growthMiB = (peak - baseline) / 1024;
  t.diagnostic(`moved ${(scenario.moved() / 1024 / 1024).toFixed(1)} MiB to the slow side; proxy RSS ${baseline} → peak ${peak} KiB (+${growthMiB.toFixed(1)} MiB)`);
  assert.ok(scenario.moved() > 0, 'the slow side received something');
  assert.ok(growthMiB < LIMIT_MIB, `proxy memory grew by ${growthMiB.toFixed(1)} MiB`);
}

test('HTTP download to a trickling client', { timeout: 30_000 }, async (t) => {
  let writer: ReturnType<typeof pump> | undefined;
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': String(GIB) });
    writer = pump((c) => res.write(c), (go) => res.once('drain', go));
    res.on('close', () => writer?.stop());
  });
  const cli = await startCliProxy(t);
  await measure(t, cli.child.pid!, async () => {
    const conn = await rawConnect(cli.port);
    const reader = trickle(conn.socket);
    conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    return { stop: () => (reader.stop(), conn.socket.destroy()), moved: () => reader.received() };
  });
});

test('HTTP upload to a trickling origin', { timeout: 30_000 }, async (t) => {
  let reader: ReturnType<typeof trickle> | undefined;
  const origin = await startOrigin(t, (req) => {
    reader = trickle(req);
  });
  const cli = await startCliProxy(t);
  await measure(t, cli.child.pid!, async () => {
    const req = request({ host: '127.0.0.1', port: cli.port, method: 'POST', path: `${origin.url}/upload`, headers: { 'Content-Length': String(GIB) } });
    req.on('error', () => undefined);
    const writer = pump((c) => req.write(c), (go) => req.once('drain', go));
    return { stop: () => (writer.stop(), req.destroy(), reader?.stop()), moved: () => reader?.received() ?? 0 };
  });
});

for (const direction of ['download', 'upload'] as const) {
  test(`CONNECT tunnel ${direction} to a trickling peer`, { timeout: 30_000 }, async (t) => {
    let serverSide: Socket | undefined;
    const server = await startTcpServer(t, (socket) => (serverSide = socket));
    const cli = await startCliProxy(t);
    await measure(t, cli.child.pid!, async () => {
      const conn = await rawConnect(cli.port);
      conn.socket.write(`CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
      await conn.waitFor('\r\n\r\n');
      // The proxy's 200 can reach this process before the server's accept of the proxy's connection does.
      await waitFor(() => serverSide !== undefined, 5000, 'the tunnel\'s connection at the server');
      const [fast, slow] = direction === 'download' ? [serverSide!, conn.socket] : [conn.socket, serverSide!];
      const reader = trickle(slow);
      const writer = pump((c) => fast.write(c), (go) => fast.once('drain', go));
      return { stop: () => (writer.stop(), reader.stop(), conn.socket.destroy()), moved: () => reader.received() };
    });
  });
}

test('upgraded (101) connection to a trickling client', { timeout: 30_000 }, async (t) => {
  let serverSide: Socket | undefined;
  const server = await startTcpServer(t, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      serverSide = socket;
    });
  });
  const cli = await startCliProxy(t);
  await measure(t, cli.child.pid!, async () => {
    const conn = await rawConnect(cli.port);
    conn.socket.write(`GET http://127.0.0.1:${server.port}/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    await conn.waitFor('101 Switching Protocols');
    const reader = trickle(conn.socket);
    const writer = pump((c) => serverSide!.write(c), (go) => serverSide!.once('drain', go));
    return { stop: () => (writer.stop(), reader.stop(), conn.socket.destroy()), moved: () => reader.received() };
  });
});
