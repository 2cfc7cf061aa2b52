/**
 * `npm run bench:idle-heap -- <checkout> [<checkout> …]`: the live JavaScript heap each idle tunnel holds, per
 * checkout. The idle rows of `npm run bench` measure RSS, which moves with when V8 last grew its heap (22.5 and
 * 30.1 KiB per tunnel for two builds that hold the same objects); this reads two full-GC heap snapshots of the CLI
 * (`--heapsnapshot-signal`), before and after BENCH_TUNNELS (2000) tunnels are opened and left idle, and divides.
 * Native memory (socket buffers, libuv handles) is not in it: it tells what getaway's own objects cost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cliNodeFlags } from './support.js';

const TUNNELS = Number(process.env['BENCH_TUNNELS'] ?? 2000);
const checkouts = process.argv.slice(2);
if (checkouts.length === 0) {
  console.error('usage: npm run bench:idle-heap -- <checkout> [<checkout> …]');
  process.exit(2);
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Sends SIGUSR2 and sums the self sizes of the snapshot the CLI writes (V8 collects garbage first). */
async function liveHeapBytes(child: ChildProcess, dir: string): Promise<number> {
  const before = new Set(readdirSync(dir));
  child.kill('SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    const file = readdirSync(dir).find((name) => !before.has(name) && name.endsWith('.heapsnapshot'));
    if (file === undefined) continue;
    // Created empty, then written in pieces: wait until it is non-empty and its size stops changing.
    let size = -1;
    for (let waits = 0; size <= 0 || statSync(join(dir, file)).size !== size; waits++) {
      if (waits === 200) throw new Error(`${file} still being written after 140 s`);
      size = statSync(join(dir, file)).size;
      await sleep(700);
    }
    const snapshot = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
    const fields = snapshot.snapshot.meta.node_fields;
    const selfSize = fields.indexOf('self_size');
    let total = 0;
    for (let k = selfSize; k < snapshot.nodes.length; k += fields.length) total += snapshot.nodes[k]!;
    return total;
  }
  throw new Error('no heap snapshot within 60 s');
}

async function openTunnel(proxyPort: number, targetPort: number): Promise<Socket> {
  const socket = connect(proxyPort, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n\r\n`);
  await once(socket, 'data');
  socket.write('ping');
  await once(socket, 'data');
  return socket;
}

async function measure(checkout: string, targetPort: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-idle-heap-'));
  const cli = join(resolve(checkout), 'dist', 'src', 'cli', 'main.js');
  const caps = ['--max-connections', '30000', '--max-connections-per-client', '30000', '--max-tunnels', '30000'];
  const child = spawn(process.execPath, [...cliNodeFlags(cli), '--heapsnapshot-signal=SIGUSR2', cli, 'serve', '--listen', '127.0.0.1:0', ...caps], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  const sockets: Socket[] = [];
  try {
    const port = await new Promise<number>((done, fail) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const match = /"port":(\d+)/.exec(chunk.toString());
        if (match !== null) done(Number(match[1]));
      });
      child.once('exit', (code) => fail(new Error(`${cli} exited with ${code}`)));
    });
    // Warm-up: code paths compiled and pools created before the baseline.
    for (let i = 0; i < 200; i++) (await openTunnel(port, targetPort)).destroy();
    await sleep(500);
    const base = await liveHeapBytes(child, dir);
    for (let i = 0; i < TUNNELS; i++) sockets.push(await openTunnel(port, targetPort));
    const held = await liveHeapBytes(child, dir);
    return (held - base) / TUNNELS;
  } finally {
    for (const socket of sockets) socket.destroy();
    child.kill('SIGKILL');
  }
}

const echo = createServer((socket) => socket.on('data', (chunk) => socket.write(chunk)));
echo.listen(0, '127.0.0.1');
await once(echo, 'listening');
for (const checkout of checkouts) {
  const bytes = await measure(checkout, (echo.address() as AddressInfo).port);
  console.log(`${checkout}: ${(bytes / 1024).toFixed(1)} KiB of live JavaScript heap per idle tunnel (${TUNNELS} tunnels)`);
}
echo.close();
process.exit(0);
