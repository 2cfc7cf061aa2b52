/**
 * `npm run bench:idle-heap -- <checkout> [<checkout> …]`: the live JavaScript heap each idle tunnel holds, per
 * checkout (or `npm-proxy`, `minimal`: the Node peers of bench:pair). The idle rows of `npm run bench` measure RSS,
 * which moves with when V8 last grew its heap (22.5 and 30.1 KiB per tunnel for two builds that hold the same
 * objects); this reads two full-GC heap snapshots of the CLI
 * (`--heapsnapshot-signal`), before and after BENCH_TUNNELS (2000) tunnels are opened and left idle, and divides.
 * Native memory (socket buffers, libuv handles) is not in it: it tells what getaway's own objects cost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cliNodeFlags, peerScript } from './support.js';

const TUNNELS = Number(process.env['BENCH_TUNNELS'] ?? 2000);
/** BENCH_TOP=N also lists the N kinds of heap node (type and constructor) that grew most per tunnel. */
const TOP = Number(process.env['BENCH_TOP'] ?? 0);
const checkouts = process.argv.slice(2);
if (checkouts.length === 0) {
  console.error('usage: npm run bench:idle-heap -- <checkout> [<checkout> …]');
  process.exit(2);
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** A heap snapshot's self sizes in all, and by node kind (type, and constructor or function name). */
interface HeapTotals {
  bytes: number;
  byKind: Map<string, { bytes: number; count: number }>;
}

/** Sends SIGUSR2 and sums the self sizes of the snapshot the CLI writes (V8 collects garbage first), in all and per node type and name. */
async function liveHeap(child: ChildProcess, dir: string): Promise<HeapTotals> {
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
    const snapshot = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
      nodes: number[];
      strings: string[];
    };
    const fields = snapshot.snapshot.meta.node_fields;
    const typeNames = snapshot.snapshot.meta.node_types[0];
    const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field)) as [number, number, number];
    const byKind = new Map<string, { bytes: number; count: number }>();
    let bytes = 0;
    for (let k = 0; k < snapshot.nodes.length; k += fields.length) {
      const size = snapshot.nodes[k + sizeAt]!;
      bytes += size;
      const type = typeNames[snapshot.nodes[k + typeAt]!]!;
      // Strings and code are named by their content; group them by type alone.
      const kind = type === 'object' || type === 'closure' || type === 'native' ? `${type} ${snapshot.strings[snapshot.nodes[k + nameAt]!]!.slice(0, 60)}` : type;
      const entry = byKind.get(kind) ?? { bytes: 0, count: 0 };
      entry.bytes += size;
      entry.count++;
      byKind.set(kind, entry);
    }
    return { bytes, byKind };
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

/** The node kinds that grew most between the two snapshots, per tunnel. */
function growth(base: HeapTotals, held: HeapTotals): string[] {
  const rows: Array<[string, number, number]> = [];
  for (const [kind, entry] of held.byKind) {
    const before = base.byKind.get(kind) ?? { bytes: 0, count: 0 };
    rows.push([kind, (entry.bytes - before.bytes) / TUNNELS, (entry.count - before.count) / TUNNELS]);
  }
  rows.sort((a, b) => b[1] - a[1]);
  return rows.slice(0, TOP).map(([kind, bytes, count]) => `  ${bytes.toFixed(0).padStart(6)} B  ${count.toFixed(2).padStart(6)} per tunnel  ${kind}`);
}

/** Node's arguments for a checkout's CLI, or for the Node peers `npm-proxy` and `minimal` (as in bench:pair). */
function commandOf(checkout: string): string[] {
  if (checkout === 'npm-proxy') return [peerScript('npm-proxy'), '0'];
  if (checkout === 'minimal') return [peerScript('minimal-proxy'), 'http', '0'];
  const cli = join(resolve(checkout), 'dist', 'src', 'cli', 'main.js');
  const caps = ['--max-connections', '30000', '--max-connections-per-client', '30000', '--max-tunnels', '30000'];
  return [...cliNodeFlags(cli), cli, 'serve', '--listen', '127.0.0.1:0', ...caps];
}

async function measure(checkout: string, targetPort: number): Promise<{ perTunnel: number; top: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-idle-heap-'));
  const child = spawn(process.execPath, ['--heapsnapshot-signal=SIGUSR2', ...commandOf(checkout)], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  const sockets: Socket[] = [];
  try {
    const port = await new Promise<number>((done, fail) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        // The CLI logs `"port":N`; the Node peers print the bare number.
        const match = /"port":(\d+)|^(\d+)$/m.exec(chunk.toString());
        if (match !== null) done(Number(match[1] ?? match[2]));
      });
      child.once('exit', (code) => fail(new Error(`${checkout} exited with ${code}`)));
    });
    // Warm-up: code paths compiled and pools created before the baseline.
    for (let i = 0; i < 200; i++) (await openTunnel(port, targetPort)).destroy();
    await sleep(500);
    const base = await liveHeap(child, dir);
    for (let i = 0; i < TUNNELS; i++) sockets.push(await openTunnel(port, targetPort));
    const held = await liveHeap(child, dir);
    return { perTunnel: (held.bytes - base.bytes) / TUNNELS, top: growth(base, held) };
  } finally {
    for (const socket of sockets) socket.destroy();
    child.kill('SIGKILL');
    // Two snapshots of tens of MB each; BENCH_KEEP=1 leaves them for a closer look in DevTools.
    if (process.env['BENCH_KEEP'] === '1') console.error(`snapshots of ${checkout} kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const echo = createServer((socket) => socket.on('data', (chunk) => socket.write(chunk)));
echo.listen(0, '127.0.0.1');
await once(echo, 'listening');
for (const checkout of checkouts) {
  const { perTunnel, top } = await measure(checkout, (echo.address() as AddressInfo).port);
  console.log(`${checkout}: ${(perTunnel / 1024).toFixed(1)} KiB of live JavaScript heap per idle tunnel (${TUNNELS} tunnels)`);
  if (TOP > 0) console.log(top.join('\n'));
}
echo.close();
process.exit(0);
