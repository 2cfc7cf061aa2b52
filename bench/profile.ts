/**
 * `npm run bench:profile -- keepalive|newconn|setup|bulk|get64m|warc-get64m|mitm-keepalive|mitm-get64m`: where a getaway process spends its CPU under one benchmark
 * row. The proxy runs in this process (library, flow log on, written to /dev/null) under the V8 profiler; the
 * load (wrk, or the Go tunnel client) and the Go origin run beside it. Self time is summed by where the code lives,
 * so the shares answer "is it getaway, its log line, Node's HTTP machinery or the kernel". BENCH_TOP=N lists
 * functions; BENCH_ALLOC=1 adds what each function allocates per operation (garbage included).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createProxy, flowLog, warcArchiver } from '../src/index.js';
import { initCertificateAuthority } from '../src/mitm/certificate-authority.js';
import { CA_CERT_FILE } from '../src/mitm/ca-files.js';
import { buildGo as buildGoIn, ROOT } from './support.js';

const row = process.argv[2] ?? 'keepalive';
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const work = mkdtempSync(join(tmpdir(), 'getaway-profile-'));

const buildGo = (name: string): string => buildGoIn(work, name);

/** Runs a load generator without blocking this process's event loop, which serves the proxy. */
function runLoad(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { env: { ...process.env, ...env }, timeout: SECONDS * 1000 + 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

function category(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (url.includes('/addons/flow-log') || url.includes('/dist/src/log/') || url.includes('/node_modules/pino') || url.includes('/node_modules/sonic-boom')) return 'flow log line (pino)';
  if (url.includes('/dist/src/')) return "getaway's own code";
  if (url.startsWith('node:') || url === '') return url === '' ? 'native: syscalls and V8 builtins' : "Node's own JS (http, net, streams)";
  return 'other';
}

const origin = spawn(buildGo('origin'), [], { stdio: ['ignore', 'pipe', 'inherit'] });
const children: ChildProcess[] = [origin];
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));
const [httpPort, rawPort, tlsPort = 0] = await new Promise<number[]>((resolve) =>
  origin.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim().split(' ').map(Number))),
);
const tunnelbench = row === 'setup' || row === 'bulk' ? buildGo('tunnelbench') : '';
// The interception rows: HTTPS through an intercepted CONNECT (bench/peers/httpsload.go trusting a fresh CA), to the
// origin's TLS port, whose self-signed certificate is not verified (as in `npm run bench`).
const mitmRow = row === 'mitm-keepalive' || row === 'mitm-get64m';
const caDir = join(work, 'ca');
if (mitmRow) await initCertificateAuthority(caDir);
const caFile = join(caDir, CA_CERT_FILE);
const httpsload = mitmRow ? buildGo('httpsload') : '';

// The CLI's destination (log/create-logger.ts), writing to /dev/null.
const logger = createLogger({ level: 'info', pretty: false, fd: openSync('/dev/null', 'w') });
/** `function file:line`, with paths shortened to where the code lives (dist/… or node_modules/…). */
function where(frame: { functionName: string; url: string; lineNumber: number }): string {
  return `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${frame.lineNumber + 1}`;
}

// warc-get64m: the 64 MiB GET with every exchange archived (`--warc`, gzip on), into this run's directory.
const archiver = row === 'warc-get64m' ? [warcArchiver({ dir: join(work, 'warcs') })] : [];
const proxy = createProxy({ port: 0, logger, addons: [flowLog(), ...archiver], ...(mitmRow ? { mitm: { caDir }, insecureUpstreamTls: true } : {}) });
const { port } = await proxy.listen();
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.start');
// BENCH_ALLOC=1: V8's sampling heap profiler too, keeping samples of objects already collected, so the report
// says who allocates per operation (garbage included), not who holds memory at the end.
const ALLOC = process.env['BENCH_ALLOC'] === '1';
if (ALLOC) {
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
let summary: string;
let operations: number;
if (row === 'keepalive' || row === 'newconn') {
  // newconn: the same load with `Connection: close`, a new client connection per request.
  const out = await runLoad('wrk', ['-t1', '-c50', `-d${SECONDS}s`, '-s', join(ROOT, 'bench', 'wrk-proxy.lua'), `http://127.0.0.1:${port}`], {
    TARGET: `http://127.0.0.1:${httpPort}/1k`,
    CLOSE: row === 'newconn' ? '1' : '0',
  });
  summary = `${/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]} req/s`;
  operations = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
} else if (row === 'get64m' || row === 'warc-get64m') {
  // One keep-alive connection pulling 64 MiB bodies: the plain-HTTP body path, per MiB.
  const out = await runLoad('wrk', ['-t1', '-c1', `-d${SECONDS}s`, '-s', join(ROOT, 'bench', 'wrk-proxy.lua'), `http://127.0.0.1:${port}`], {
    TARGET: `http://127.0.0.1:${httpPort}/64m`,
  });
  summary = `${/Transfer\/sec:\s+([\d.]+\w+)/.exec(out)?.[1]}/s`;
  operations = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN) * 64;
} else if (mitmRow) {
  const big = row === 'mitm-get64m';
  summary = (await runLoad(httpsload, ['-proxy', `127.0.0.1:${port}`, '-url', `https://127.0.0.1:${tlsPort}/${big ? '64m' : '1k'}`, '-ca', caFile, '-c', big ? '1' : '50', '-d', `${SECONDS}s`])).trim();
  const result = JSON.parse(summary) as { requests: number; bytes: number };
  operations = big ? result.bytes / 1048576 : result.requests;
} else {
  const args = row === 'bulk' ? ['-mode', 'bulk', '-c', '2', '-mib', '512'] : ['-mode', 'setup', '-c', '50', '-d', `${SECONDS}s`];
  summary = (await runLoad(tunnelbench, ['-proxy', `127.0.0.1:${port}`, '-target', `127.0.0.1:${rawPort}`, ...args])).trim();
  const result = JSON.parse(summary) as { tunnels?: number; bytes?: number };
  operations = row === 'bulk' ? (result.bytes ?? NaN) / 1048576 : (result.tunnels ?? NaN);
}
const { profile } = await session.post('Profiler.stop');
const allocation = ALLOC ? (await session.post('HeapProfiler.stopSampling')).profile : undefined;
await proxy.close();

const byId = new Map<number, ProfileNode>((profile.nodes as ProfileNode[]).map((node) => [node.id, node]));
const totals = new Map<string, number>();
profile.samples!.forEach((id: number, i: number) => {
  const name = category(byId.get(id)!);
  totals.set(name, (totals.get(name) ?? 0) + (profile.timeDeltas![i] ?? 0));
});
const busy = [...totals].filter(([name]) => name !== 'idle').reduce((sum, [, us]) => sum + us, 0);
console.log(`row ${row}: ${summary}`);
console.log(`busy CPU ${(busy / 1000).toFixed(0)} ms; shares of it, by where the code lives:`);
for (const [name, us] of [...totals].filter(([n]) => n !== 'idle').sort((a, b) => b[1] - a[1])) {
  console.log(`  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`);
}

// BENCH_TOP=N also lists the N functions with the most self time and the N getaway functions with the most
// inclusive time (their own plus everything they called), which is what points at a change to make.
const top = Number(process.env['BENCH_TOP'] ?? 0);
if (top > 0) {
  const self = new Map<number, number>();
  profile.samples!.forEach((id: number, i: number) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas![i] ?? 0)));
  const selfByFunction = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    if (category(node) === 'idle') continue;
    const key = where(node.callFrame);
    selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + us);
  }
  const inclusive = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!;
    let total = self.get(id) ?? 0;
    const key = where(node.callFrame);
    const counts = node.callFrame.url.includes('/dist/src/') && !onStack.has(key);
    if (counts) onStack.add(key);
    for (const child of node.children ?? []) total += walk(child, onStack);
    if (counts) {
      onStack.delete(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + total);
    }
    return total;
  };
  walk((profile.nodes as ProfileNode[])[0]!.id, new Set());
  const print = (title: string, entries: Map<string, number>): void => {
    console.log(title);
    for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`);
    }
  };
  print('most self time:', selfByFunction);
  print("getaway's functions by inclusive time:", inclusive);
}

interface AllocationNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocationNode[];
}

if (allocation !== undefined) {
  const bySite = new Map<string, number>();
  let total = 0;
  const visit = (node: AllocationNode): void => {
    const site = where(node.callFrame);
    bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    total += node.selfSize;
    node.children.forEach(visit);
  };
  visit(allocation.head as AllocationNode);
  console.log(`allocated ${(total / operations / 1024).toFixed(1)} KiB per operation (sampled); by allocating function:`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Math.max(top, 25))) {
    console.log(`  ${(bytes / operations).toFixed(0).padStart(6)} B  ${site}`);
  }
}
