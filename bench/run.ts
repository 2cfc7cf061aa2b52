/**
 * `npm run bench`: getaway against real peers (squid, tinyproxy, the npm `proxy` package, a Go standard-library
 * proxy), a minimal node:http proxy as the floor of what Node costs (`node-floor`) and a direct baseline, on one local origin, with the same load generators (wrk for HTTP, our Go client
 * for tunnels). Row by row, each row's repetitions together after its own warm-up (as the rig runs its tests), peers
 * rotated per repetition; each figure is a median, and ratios are taken
 * against the Go proxy within each repetition before the median. Loopback only; every process started here is
 * stopped by PID (process group). Env: BENCH_REPS (3), BENCH_SECONDS (per-row run length; default 4 s keep-alive,
 * 3 s new connections, 2 s tunnel setup, as ../shared/bench-rig's A, B and D), BENCH_WARMUP (6 s per row per peer, before the row),
 * BENCH_PEERS (comma list to narrow), BENCH_ROWS (comma list of row names to run, all of them unless set).
 *
 * The interception rows (mitm-keepalive-1k, mitm-get-64m) run only getaway-mitm (`--mitm`, flow log off) and
 * mitmdump (Debian's mitmproxy, `-q`, bodies over 1 MiB streamed as getaway streams them): HTTPS through an
 * intercepting CONNECT to the origin's TLS port, driven by bench/peers/httpsload.go (Go's HTTP/1.1 client trusting
 * the peer's CA, one connection per worker). Both are told not to verify the origin's self-signed certificate.
 *
 * The loads are the outside rig's (../shared/bench-rig), so the two can be read side by side: one wrk thread (the
 * other core is left to the proxy and the origin; two threads took CPU from multi-threaded peers like the Go proxy
 * and flattered single-threaded ones), 50 connections, the origin's authority in Host, the same run lengths.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCertificateAuthority } from '../src/mitm/certificate-authority.js';
import { CA_CERT_FILE } from '../src/mitm/ca-files.js';
import { buildGo as buildGoIn, CHUNKED_64M_PATH, cliNodeFlags, ensureDebianTools, freePort, groupCpuSeconds, groupPids, launch, median, peerScript, ROOT, stopGroup, waitForPort } from './support.js';

const REPS = Number(process.env['BENCH_REPS'] ?? 3);
const SECONDS_OVERRIDE = process.env['BENCH_SECONDS'] === undefined ? undefined : Number(process.env['BENCH_SECONDS']);
/** Run length per row, the rig's A_DURATION, B_DURATION and D_DURATION unless BENCH_SECONDS says otherwise. */
const ROW_SECONDS = { keepalive: SECONDS_OVERRIDE ?? 4, newconn: SECONDS_OVERRIDE ?? 3, setup: SECONDS_OVERRIDE ?? 2 };
/** The longest row's run; run() bounds every load by ten times it plus half a minute (the bulk rows have no duration). */
const LONGEST_RUN_SECONDS = Math.max(ROW_SECONDS.keepalive, ROW_SECONDS.newconn, ROW_SECONDS.setup);
const WARMUP_SECONDS = Number(process.env['BENCH_WARMUP'] ?? 6);
const WORK = mkdtempSync(join(tmpdir(), 'getaway-bench-'));
// squid drops to its own user and must reach its config and log directory.
chmodSync(WORK, 0o755);

/** wrk, squid, tinyproxy, Go and mitmdump come from Debian; install what is missing (as root) or say what to install. */
function ensureTools(peers: readonly PeerName[]): void {
  ensureDebianTools({ wrk: 'wrk', squid: 'squid', tinyproxy: 'tinyproxy', go: 'golang-go', ...(peers.includes('mitmdump') ? { mitmdump: 'mitmproxy' } : {}) });
}

const buildGo = (name: string): string => buildGoIn(WORK, name);

function groupRssKiB(pgid: number): number {
  let total = 0;
  for (const pid of groupPids(pgid)) {
    try {
      total += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

interface RunningPeer {
  name: string;
  port: number;
  pgid: number;
  /** The CA an intercepting peer signs its leaves with (PEM file), for the client to trust. */
  caFile?: string;
  stop(): void;
}

/**
 * node-floor: bench/peers/minimal-proxy (node:http, no flows, hooks, log or limits), what Node itself costs.
 * getaway-quiet: getaway with its flow log off (`--log-level warn`). squid and tinyproxy run here with their
 * access logs off (`access_log none`, `LogLevel Critical`) and the Go proxy logs nothing, so getaway-quiet is
 * the like-for-like row; `getaway` is the default setup, one log line per flow.
 */
type PeerName = 'getaway' | 'getaway-quiet' | 'getaway-w2' | 'getaway-warc' | 'getaway-mitm' | 'squid' | 'tinyproxy' | 'npm-proxy' | 'node-floor' | 'go' | 'mitmdump';

async function startPeer(name: PeerName, goproxy: string): Promise<RunningPeer> {
  const port = await freePort();
  const dir = join(WORK, name);
  mkdirSync(dir, { recursive: true });
  const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  // Caps raised only so the idle-tunnel rows can hold their thousands of tunnels from one loopback client.
  const caps = ['--max-connections', '30000', '--max-connections-per-client', '30000', '--max-tunnels', '30000'];
  // The CLI with the Node flags of its shebang, as `npx getaway` runs it.
  const getaway = (...args: string[]): ChildProcess =>
    launch(process.execPath, [...cliNodeFlags(cli), cli, 'serve', '--listen', `127.0.0.1:${port}`, ...args, ...caps]);
  let child: ChildProcess;
  let caFile: string | undefined;
  switch (name) {
    case 'getaway':
      child = getaway();
      break;
    case 'getaway-quiet':
      child = getaway('--log-level', 'warn');
      break;
    case 'getaway-w2':
      child = getaway('--workers', '2');
      break;
    case 'getaway-warc':
      // What archiving costs: getaway as shipped (flow log on) writing every exchange to .warc.gz in the bench's own
      // temporary directory. Only on the rows archiving touches (WARC_ROWS).
      child = getaway('--warc', join(dir, 'warcs'));
      break;
    case 'getaway-mitm': {
      // Like mitmdump -q: no line per flow. The origin's certificate is self-signed (bench/peers/origin.go).
      await initCertificateAuthority(join(dir, 'ca'));
      caFile = join(dir, 'ca', CA_CERT_FILE);
      child = getaway('--mitm', '--ca-dir', join(dir, 'ca'), '--insecure-upstream-tls', '--log-level', 'warn');
      break;
    }
    case 'mitmdump':
      // mitmproxy writes its CA into confdir at start; bodies over 1 MiB are streamed, not held whole.
      caFile = join(dir, 'mitmproxy-ca-cert.pem');
      child = launch('mitmdump', ['--listen-host', '127.0.0.1', '--listen-port', String(port), '--set', `confdir=${dir}`, '--ssl-insecure', '-q', '--set', 'stream_large_bodies=1m']);
      break;
    case 'squid': {
      chmodSync(dir, 0o777);
      const conf = join(dir, 'squid.conf');
      writeFileSync(
        conf,
        [
          `http_port 127.0.0.1:${port}`,
          'http_access allow all',
          'cache deny all',
          'cache_mem 8 MB',
          'access_log none',
          `cache_log ${join(dir, 'cache.log')}`,
          `pid_filename ${join(dir, 'squid.pid')}`,
          `coredump_dir ${dir}`,
          'shutdown_lifetime 1 seconds',
          'max_filedescriptors 65536',
          '',
        ].join('\n'),
      );
      child = launch('squid', ['-N', '-f', conf]);
      break;
    }
    case 'tinyproxy': {
      const conf = join(dir, 'tinyproxy.conf');
      writeFileSync(conf, [`Port ${port}`, 'Listen 127.0.0.1', 'Timeout 600', 'MaxClients 20000', 'LogLevel Critical', ''].join('\n'));
      child = launch('tinyproxy', ['-d', '-c', conf]);
      break;
    }
    case 'npm-proxy':
      child = launch(process.execPath, [peerScript('npm-proxy'), String(port)]);
      break;
    case 'node-floor':
      child = launch(process.execPath, [peerScript('minimal-proxy'), 'http', String(port)]);
      break;
    case 'go':
      child = launch(goproxy, [String(port)]);
      break;
  }
  const pgid = child.pid!;
  await waitForPort(port);
  for (let waited = 0; caFile !== undefined && !existsSync(caFile) && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
  if (caFile !== undefined && !existsSync(caFile)) throw new Error(`${name}: no CA certificate at ${caFile} after 10 s`);
  return {
    name,
    port,
    pgid,
    ...(caFile === undefined ? {} : { caFile }),
    stop() {
      stopGroup(pgid);
    },
  };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(command, args, { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024, timeout: LONGEST_RUN_SECONDS * 1000 * 10 + 30_000 }).toString();
}

function toMs(value: string, unit: string): number {
  return unit === 'us' ? Number(value) / 1000 : unit === 's' ? Number(value) * 1000 : Number(value);
}

interface Measurement {
  value: number;
  p50Ms?: number;
  p99Ms?: number;
  cpuUsPerOp?: number;
  cpuSecondsPerGiB?: number;
  rssMiB?: number;
  errors?: number;
}

function wrk(proxy: RunningPeer | undefined, target: string, connections: number, close: boolean, seconds: number): { rps: number; requests: number; p50: number; p99: number; transferMiB: number; errors: number } {
  const url = proxy === undefined ? target : `http://127.0.0.1:${proxy.port}`;
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  if (proxy !== undefined) args.push('-s', join(ROOT, 'bench', 'wrk-proxy.lua'));
  else if (close) args.push('-H', 'Connection: close');
  const out = run('wrk', [...args, url], { TARGET: target, CLOSE: close ? '1' : '0' });
  const latency = (pct: string): number => {
    const match = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    return match ? toMs(match[1]!, match[2]!) : NaN;
  };
  const transfer = /Transfer\/sec:\s+([\d.]+)(\w+)/.exec(out);
  const factor: Record<string, number> = { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024 };
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN),
    p50: latency('50'),
    p99: latency('99'),
    transferMiB: transfer ? Number(transfer[1]) * (factor[transfer[2]!] ?? 1) : NaN,
    errors: non2xx + (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
  };
}

type RowName = 'keepalive-1k' | 'newconn-1k' | 'get-64m' | 'get-64m-chunked' | 'post-64m' | 'post-64m-chunked' | 'connect-bulk' | 'connect-upload' | 'connect-setup' | 'idle-2000' | 'mitm-keepalive-1k' | 'mitm-get-64m';
interface Row {
  name: RowName;
  unit: string;
  higherIsBetter: boolean;
  direct: boolean;
}

/** The rows the getaway-warc peer runs: HTTP exchanges are archived, CONNECT tunnels (no interception) are not. */
const WARC_ROWS = new Set(['keepalive-1k', 'get-64m', 'post-64m']);

/** The interception rows, and the peers that intercept: those peers run only those rows. */
const MITM_ROWS = new Set<RowName>(['mitm-keepalive-1k', 'mitm-get-64m']);
const MITM_PEERS = new Set(['getaway-mitm', 'mitmdump']);

function runsRow(peer: string, row: string): boolean {
  const mitmRow = MITM_ROWS.has(row as RowName);
  if (MITM_PEERS.has(peer) || mitmRow) return MITM_PEERS.has(peer) && mitmRow;
  return peer !== 'getaway-warc' || WARC_ROWS.has(row);
}

const ROWS: Row[] = [
  { name: 'keepalive-1k', unit: 'req/s', higherIsBetter: true, direct: true },
  { name: 'newconn-1k', unit: 'req/s', higherIsBetter: true, direct: true },
  { name: 'get-64m', unit: 'MiB/s', higherIsBetter: true, direct: true },
  { name: 'get-64m-chunked', unit: 'MiB/s', higherIsBetter: true, direct: true },
  { name: 'post-64m', unit: 'MiB/s', higherIsBetter: true, direct: true },
  { name: 'post-64m-chunked', unit: 'MiB/s', higherIsBetter: true, direct: true },
  { name: 'connect-bulk', unit: 'MiB/s', higherIsBetter: true, direct: false },
  { name: 'connect-upload', unit: 'MiB/s', higherIsBetter: true, direct: false },
  { name: 'connect-setup', unit: 'tunnels/s', higherIsBetter: true, direct: false },
  { name: 'idle-2000', unit: 'KiB/tunnel', higherIsBetter: false, direct: false },
  { name: 'mitm-keepalive-1k', unit: 'req/s', higherIsBetter: true, direct: false },
  { name: 'mitm-get-64m', unit: 'MiB/s', higherIsBetter: true, direct: false },
];

const SELECTED_ROWS: Row[] = (() => {
  const asked = process.env['BENCH_ROWS']?.split(',');
  const unknown = asked?.filter((name) => !ROWS.some((row) => row.name === name)) ?? [];
  if (unknown.length > 0) throw new Error(`BENCH_ROWS: no row named ${unknown.join(', ')} (rows: ${ROWS.map((row) => row.name).join(', ')})`);
  return ROWS.filter((row) => asked === undefined || asked.includes(row.name));
})();

/** Those of `rows` that this run measures (BENCH_ROWS): the summary tables leave out the rest instead of printing dashes. */
function ranOf(rows: Iterable<string>): RowName[] {
  return [...rows].filter((name) => SELECTED_ROWS.some((row) => row.name === name)) as RowName[];
}

interface HttpsLoadResult {
  requests: number;
  bytes: number;
  failures: number;
  perSecond: number;
  mibPerSecond: number;
}

/**
 * bench/peers/httpsload.go through `peer` (straight to the origin without one); `postBytes`: POSTs of that size,
 * chunked (no Content-Length) with `chunked`.
 */
function httpsLoad(httpsload: string, peer: RunningPeer | undefined, url: string, connections: number, seconds: number, postBytes = 0, chunked = false): HttpsLoadResult {
  const args = ['-url', url, '-c', String(connections), '-d', `${seconds}s`, '-post', String(postBytes)];
  if (chunked) args.push('-chunked');
  if (peer !== undefined) args.push('-proxy', `127.0.0.1:${peer.port}`);
  if (peer?.caFile !== undefined) args.push('-ca', peer.caFile);
  return JSON.parse(run(httpsload, args)) as HttpsLoadResult;
}

interface Origin {
  http: number;
  raw: number;
  tls: number;
}

interface Loaders {
  tunnelbench: string;
  httpsload: string;
}

/** A run's CPU (its one operation) over the bytes it moved, as seconds per GiB. */
function perGiB(m: Measurement, bytes: number): Measurement {
  return { ...m, cpuSecondsPerGiB: ((m.cpuUsPerOp ?? 0) / 1e6) * (1024 ** 3 / Math.max(1, bytes)) };
}

async function measure(row: RowName, peer: RunningPeer | undefined, origin: Origin, { tunnelbench, httpsload }: Loaders): Promise<Measurement> {
  const cpuBefore = peer ? groupCpuSeconds(peer.pgid) : 0;
  const withCpu = (m: Measurement, ops: number): Measurement => {
    if (!peer) return m;
    const cpu = groupCpuSeconds(peer.pgid) - cpuBefore;
    return { ...m, cpuUsPerOp: (cpu / ops) * 1e6, rssMiB: groupRssKiB(peer.pgid) / 1024 };
  };
  switch (row) {
    case 'keepalive-1k':
    case 'newconn-1k': {
      const close = row === 'newconn-1k';
      const result = wrk(peer, `http://127.0.0.1:${origin.http}/1k`, 50, close, close ? ROW_SECONDS.newconn : ROW_SECONDS.keepalive);
      return withCpu({ value: result.rps, p50Ms: result.p50, p99Ms: result.p99, errors: result.errors }, result.requests);
    }
    case 'get-64m':
    case 'get-64m-chunked': {
      const path = row === 'get-64m' ? '/64m' : CHUNKED_64M_PATH;
      const result = wrk(peer, `http://127.0.0.1:${origin.http}${path}`, 1, false, ROW_SECONDS.keepalive);
      const m = withCpu({ value: result.transferMiB, errors: result.errors }, 1);
      // wrk reports MiB/s; the bytes moved are 64 MiB a request (at least one MiB counted, as before).
      return perGiB(m, Math.max(result.requests * 64, 1) * 1048576);
    }
    case 'post-64m':
    case 'post-64m-chunked': {
      // One client POSTing 64 MiB bodies to a sink (Content-Length framed, or in 32 KiB chunks): the plain-HTTP request body path.
      const out = httpsLoad(httpsload, peer, `http://127.0.0.1:${origin.http}/sink`, 1, ROW_SECONDS.keepalive, 64 * 1048576, row === 'post-64m-chunked');
      const m = withCpu({ value: out.mibPerSecond, errors: out.failures }, 1);
      return perGiB(m, out.bytes);
    }
    case 'connect-bulk':
    case 'connect-upload': {
      const mode = row === 'connect-bulk' ? 'bulk' : 'up';
      const out = JSON.parse(run(tunnelbench, ['-proxy', `127.0.0.1:${peer!.port}`, '-target', `127.0.0.1:${origin.raw}`, '-mode', mode, '-c', '2', '-mib', '512'])) as { bytes: number; mibPerSecond: number };
      const m = withCpu({ value: out.mibPerSecond }, 1);
      return perGiB(m, out.bytes);
    }
    case 'connect-setup': {
      const out = JSON.parse(run(tunnelbench, ['-proxy', `127.0.0.1:${peer!.port}`, '-target', `127.0.0.1:${origin.raw}`, '-mode', 'setup', '-c', '50', '-d', `${ROW_SECONDS.setup}s`])) as {
        tunnels: number;
        failures: number;
        perSecond: number;
        p50ms: number;
        p99ms: number;
      };
      return withCpu({ value: out.perSecond, p50Ms: out.p50ms, p99Ms: out.p99ms, errors: out.failures }, out.tunnels);
    }
    case 'idle-2000':
      return { value: await idleTunnels(peer!, origin.raw, tunnelbench, 2000) };
    case 'mitm-keepalive-1k': {
      const out = httpsLoad(httpsload, peer!, `https://127.0.0.1:${origin.tls}/1k`, 50, ROW_SECONDS.keepalive);
      return withCpu({ value: out.perSecond, errors: out.failures }, out.requests);
    }
    case 'mitm-get-64m': {
      const out = httpsLoad(httpsload, peer!, `https://127.0.0.1:${origin.tls}/64m`, 1, ROW_SECONDS.keepalive);
      const m = withCpu({ value: out.mibPerSecond, errors: out.failures }, 1);
      return perGiB(m, out.bytes);
    }
  }
}

/**
 * Memory per idle tunnel is measured on a fresh process: after the bulk rows a peer holds garbage whose collection
 * during the measurement made the RSS difference negative (seen for Node peers).
 */
async function restartPeer(peers: RunningPeer[], peer: RunningPeer, goproxy: string): Promise<RunningPeer> {
  peer.stop();
  const fresh = await startPeer(peer.name as PeerName, goproxy);
  peers[peers.indexOf(peer)] = fresh;
  return fresh;
}

/**
 * A row's own load through one peer, unmeasured, for WARMUP_SECONDS, right before that row's repetitions, as
 * ../shared/bench-rig warms each target before its tests A, B and D. A Node peer's first seconds run cold code (seen:
 * 997 req/s in a cold first repetition, 2,800 in the next), and V8 was seen still optimising getaway's CONNECT path
 * 3–4 s into a load (--trace-opt). Warming every load once at start instead, then running the rows interleaved,
 * measured CONNECT setup right after each peer's bulk rows: 733 µs per tunnel for getaway-quiet and 362 for
 * node-floor, where the rig read 291 and 266 the same hour (`BENCH_PRIME=bulk BENCH_WARMUP=0 npm run bench:pair --
 * minimal . setup` reproduces it: 1.5x the minimal proxy, and the minimal proxy itself at twice its warmed cost).
 */
function warmUp(row: RowName, peer: RunningPeer, origin: Origin, { tunnelbench, httpsload }: Loaders): void {
  switch (row) {
    case 'keepalive-1k':
    case 'newconn-1k':
      execFileSync('wrk', ['-t1', '-c20', `-d${WARMUP_SECONDS}s`, '-s', join(ROOT, 'bench', 'wrk-proxy.lua'), `http://127.0.0.1:${peer.port}`], {
        env: { ...process.env, TARGET: `http://127.0.0.1:${origin.http}/1k`, CLOSE: row === 'newconn-1k' ? '1' : '0' },
        stdio: 'ignore',
      });
      return;
    case 'connect-setup':
      execFileSync(tunnelbench, ['-proxy', `127.0.0.1:${peer.port}`, '-target', `127.0.0.1:${origin.raw}`, '-mode', 'setup', '-c', '20', '-d', `${WARMUP_SECONDS}s`], { stdio: 'ignore' });
      return;
    case 'mitm-keepalive-1k':
      httpsLoad(httpsload, peer, `https://127.0.0.1:${origin.tls}/1k`, 20, WARMUP_SECONDS);
      return;
    default:
      // The bulk rows, as the rig's test C: long transfers warm up within their own first seconds.
      return;
  }
}

/** Holds `count` idle tunnels and returns the proxy's extra RSS per tunnel, in KiB. */
async function idleTunnels(peer: RunningPeer, rawPort: number, tunnelbench: string, count: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  const before = groupRssKiB(peer.pgid);
  const client = launch(tunnelbench, ['-proxy', `127.0.0.1:${peer.port}`, '-target', `127.0.0.1:${rawPort}`, '-mode', 'idle', '-n', String(count)], 'pipe');
  const opened = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${peer.name}: idle tunnels not open after 60 s`)), 60_000);
    client.stdout!.on('data', (chunk: Buffer) => {
      const match = /ready (\d+)/.exec(chunk.toString());
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = groupRssKiB(peer.pgid);
  try {
    process.kill(-client.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  if (opened < count * 0.95) throw new Error(`${peer.name}: only ${opened} of ${count} idle tunnels opened`);
  return (after - before) / opened;
}

const PER_GIB_ROWS = new Set<RowName>(['connect-bulk', 'connect-upload', 'get-64m', 'get-64m-chunked', 'post-64m', 'post-64m-chunked', 'mitm-get-64m']);
const PER_OP_ROWS = new Set<RowName>(['keepalive-1k', 'newconn-1k', 'connect-setup', 'mitm-keepalive-1k']);

/** The proxy CPU figure of a row: per GiB for the bulk rows, per operation for the request and setup rows. */
function cpuOf(row: RowName, m: Measurement | undefined): number {
  if (m === undefined) return NaN;
  if (PER_GIB_ROWS.has(row)) return m.cpuSecondsPerGiB ?? NaN;
  return m.cpuUsPerOp ?? NaN;
}

const CPU_ROWS: RowName[] = ['keepalive-1k', 'newconn-1k', 'connect-setup', 'connect-bulk', 'connect-upload'];
/** The peers that are not getaway and not the floor: the ones the goal is stated against. */
const OTHER_PEERS: PeerName[] = ['squid', 'tinyproxy', 'npm-proxy', 'go'];

/**
 * Where getaway's own cost ends and Node's begins, per CPU row: getaway's CPU over the floor's (what getaway adds),
 * and the floor's over the best other peer's (what Node allows). Ratios are taken within each repetition, then the
 * median, like the main table; the best peer is the one with the lowest median CPU on that row.
 */
function cpuStandings(results: Map<string, Measurement[]>, key: (row: string, peer: string) => string, present: readonly string[]): string[] {
  const rows = ranOf(CPU_ROWS);
  if (!present.includes('node-floor') || rows.length === 0) return [];
  const ratio = (row: RowName, over: string, under: string): number => {
    const a = results.get(key(row, over)) ?? [];
    const b = results.get(key(row, under)) ?? [];
    return median(a.map((m, i) => cpuOf(row, m) / cpuOf(row, b[i])));
  };
  const getaways = (['getaway', 'getaway-quiet'] as const).filter((name) => present.includes(name));
  const lines = [
    '',
    'Proxy CPU against the floor (node-floor) and the best other peer, per repetition, then the median:',
    '',
    `| row | ${getaways.map((name) => `${name} / floor`).join(' | ')} | floor / best peer | best peer |`,
    `|---|${getaways.map(() => '---|').join('')}---|---|`,
  ];
  const others = OTHER_PEERS.filter((name) => present.includes(name));
  for (const row of rows) {
    const medianCpu = (name: string): number => median((results.get(key(row, name)) ?? []).map((m) => cpuOf(row, m)));
    const best = others.filter((name) => Number.isFinite(medianCpu(name))).sort((a, b) => medianCpu(a) - medianCpu(b))[0];
    const cells = getaways.map((name) => `${fmt(ratio(row, name, 'node-floor'), 2)}x`);
    lines.push(`| ${row} | ${cells.join(' | ')} | ${best === undefined ? '–' : `${fmt(ratio(row, 'node-floor', best), 2)}x`} | ${best ?? '–'} |`);
  }
  return lines;
}

/** What --warc costs, per repetition then the median: getaway-warc's rate and CPU per operation over getaway's. */
function archiveCost(results: Map<string, Measurement[]>, key: (row: string, peer: string) => string, present: readonly string[]): string[] {
  const rows = ranOf(WARC_ROWS);
  if (!present.includes('getaway-warc') || !present.includes('getaway') || rows.length === 0) return [];
  const lines = ['', 'What archiving costs (`--warc DIR`, gzip on, flow log on in both): getaway-warc over getaway, per repetition, then the median:', '', '| row | rate | proxy CPU per request (per MiB on the 64 MiB rows) |', '|---|---|---|'];
  for (const row of rows) {
    const warc = results.get(key(row, 'getaway-warc')) ?? [];
    const plain = results.get(key(row, 'getaway')) ?? [];
    const rate = median(warc.map((m, i) => m.value / (plain[i]?.value ?? NaN)));
    // The 64 MiB row's CPU figure is per run, and runs move different amounts: compare it per MiB moved.
    const perOp = (m: Measurement | undefined): number => (m?.cpuUsPerOp ?? NaN) / (PER_GIB_ROWS.has(row) ? (m?.value ?? NaN) : 1);
    const cpu = median(warc.map((m, i) => perOp(m) / perOp(plain[i])));
    lines.push(`| ${row} | ${fmt(rate, 2)}x | ${fmt(cpu, 2)}x |`);
  }
  return lines;
}

/**
 * Interception against mitmdump, and what it costs getaway: getaway-mitm over mitmdump on the same rows (rate, and
 * proxy CPU per request or per GiB), and getaway-mitm's CPU over getaway-quiet's on the plain-HTTP row of the same
 * shape (both with the flow log off), per repetition, then the median.
 */
function interceptionCost(results: Map<string, Measurement[]>, key: (row: string, peer: string) => string, present: readonly string[]): string[] {
  const rows = ranOf(MITM_ROWS);
  if (!present.includes('getaway-mitm') || rows.length === 0) return [];
  const lines = ['', 'Interception (`--mitm`, HTTPS through an intercepted CONNECT): getaway-mitm over mitmdump, and over getaway-quiet on the plain-HTTP row, per repetition, then the median:', '', '| row | rate vs mitmdump | CPU vs mitmdump | CPU vs getaway-quiet, plain HTTP |', '|---|---|---|---|'];
  const plainRow: Record<string, RowName> = { 'mitm-keepalive-1k': 'keepalive-1k', 'mitm-get-64m': 'get-64m' };
  for (const row of rows) {
    const mitm = results.get(key(row, 'getaway-mitm')) ?? [];
    const other = results.get(key(row, 'mitmdump')) ?? [];
    const plain = results.get(key(plainRow[row]!, 'getaway-quiet')) ?? [];
    const rate = median(mitm.map((m, i) => m.value / (other[i]?.value ?? NaN)));
    const cpu = median(mitm.map((m, i) => cpuOf(row, m) / cpuOf(row, other[i])));
    const overPlain = median(mitm.map((m, i) => cpuOf(row, m) / cpuOf(plainRow[row]!, plain[i])));
    lines.push(`| ${row} | ${fmt(rate, 2)}x | ${fmt(cpu, 2)}x | ${fmt(overPlain, 2)}x |`);
  }
  return lines;
}

function fmt(value: number | undefined, digits = 0): string {
  return value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

async function main(): Promise<void> {
  const only = process.env['BENCH_PEERS']?.split(',');
  const names: PeerName[] = (['getaway', 'getaway-quiet', 'getaway-w2', 'getaway-warc', 'getaway-mitm', 'squid', 'tinyproxy', 'npm-proxy', 'node-floor', 'go', 'mitmdump'] as const).filter((n) => !only || only.includes(n) || n === 'go');
  ensureTools(names);
  const goproxy = buildGo('goproxy');
  const originBin = buildGo('origin');
  const tunnelbench = buildGo('tunnelbench');
  const loaders: Loaders = { tunnelbench, httpsload: buildGo('httpsload') };
  const originProcess = launch(originBin, [], 'pipe');
  const [httpPort, rawPort, tlsPort] = await new Promise<number[]>((resolve) =>
    originProcess.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim().split(' ').map(Number))),
  );
  const origin: Origin = { http: httpPort!, raw: rawPort!, tls: tlsPort! };
  const peers: RunningPeer[] = [];
  const stopAll = (): void => {
    for (const peer of peers) peer.stop();
    stopGroup(originProcess.pid!);
  };
  process.on('exit', stopAll);
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  try {
    for (const name of names) peers.push(await startPeer(name, goproxy));
    const results = new Map<string, Measurement[]>();
    const key = (row: string, peer: string): string => `${row}|${peer}`;
    const started = Date.now();
    // The throughput rows on warmed peers, then the idle row on freshly started ones (restarting a peer mid-way
    // would need another warm-up before the next throughput row).
    const idleRow = ROWS.find((row) => row.name === 'idle-2000')!;
    const passes: Array<{ rows: Row[]; fresh: boolean }> = [
      { rows: SELECTED_ROWS.filter((row) => row !== idleRow), fresh: false },
      { rows: SELECTED_ROWS.filter((row) => row === idleRow), fresh: true },
    ];
    for (const { rows, fresh } of passes) {
      // Row by row, each row's repetitions together after its warm-up, in the rig's order.
      for (const row of rows) {
        if (!fresh) for (const peer of peers) if (runsRow(peer.name, row.name)) warmUp(row.name, peer, origin, loaders);
        for (let rep = 0; rep < REPS; rep++) {
          // Rotate the order each repetition so no peer always runs first (warm caches, thermal state).
          const order = [...peers.slice(rep % peers.length), ...peers.slice(0, rep % peers.length)];
          const targets: Array<RunningPeer | undefined> = (row.direct ? [undefined, ...order] : order).filter((peer) => peer === undefined || runsRow(peer.name, row.name));
          for (let peer of targets) {
            const name = peer?.name ?? 'direct';
            if (fresh && peer !== undefined) peer = await restartPeer(peers, peer, goproxy);
            const m = await measure(row.name, peer, origin, loaders).catch((err: Error) => {
              console.error(`${row.name} ${name}: ${err.message}`);
              return { value: NaN } as Measurement;
            });
            results.set(key(row.name, name), [...(results.get(key(row.name, name)) ?? []), m]);
            process.stderr.write(`rep ${rep + 1}/${REPS} ${row.name} ${name}: ${fmt(m.value, 1)} ${ROWS.find((r) => r.name === row.name)!.unit}\n`);
          }
        }
      }
    }
    const previous = SELECTED_ROWS.includes(idleRow) ? peers.find((p) => p.name === 'getaway') : undefined;
    const getawayPeer = previous ? await restartPeer(peers, previous, goproxy) : undefined;
    const idle10k = getawayPeer ? await idleTunnels(getawayPeer, origin.raw, tunnelbench, 10_000).catch((err: Error) => (console.error(err.message), NaN)) : NaN;

    const lines: string[] = [];
    lines.push(`Repetitions: ${REPS}, ${ROW_SECONDS.keepalive} / ${ROW_SECONDS.newconn} / ${ROW_SECONDS.setup} s per keep-alive / new-connection / setup run, ${WARMUP_SECONDS} s of warm-up per load, ${((Date.now() - started) / 1000).toFixed(0)} s in all. Ratio: the peer's figure over the Go proxy's, per repetition, then the median (for KiB/tunnel, Go's over the peer's, so higher is better everywhere).`, '');
    lines.push('| row | peer | median | ratio vs Go | p50 ms | p99 ms | proxy CPU | RSS MiB | errors |', '|---|---|---|---|---|---|---|---|---|');
    for (const row of SELECTED_ROWS) {
      const rowPeers = [...(row.direct ? ['direct'] : []), ...peers.map((p) => p.name).filter((name) => runsRow(name, row.name))];
      for (const name of rowPeers) {
        const ms = results.get(key(row.name, name)) ?? [];
        const goMs = results.get(key(row.name, 'go')) ?? [];
        const ratios = ms.map((m, i) => (row.higherIsBetter ? m.value / (goMs[i]?.value ?? NaN) : (goMs[i]?.value ?? NaN) / m.value));
        const cpu = PER_GIB_ROWS.has(row.name)
          ? `${fmt(median(ms.map((m) => m.cpuSecondsPerGiB ?? NaN)), 2)} s/GiB`
          : PER_OP_ROWS.has(row.name)
            ? `${fmt(median(ms.map((m) => m.cpuUsPerOp ?? NaN)), 0)} µs/op`
            : '–';
        lines.push(
          `| ${row.name} | ${name} | ${fmt(median(ms.map((m) => m.value)), row.name === 'idle-2000' ? 1 : 0)} ${row.unit} | ${name === 'direct' || !Number.isFinite(median(ratios)) ? '–' : `${fmt(median(ratios), 2)}x`} | ${fmt(median(ms.map((m) => m.p50Ms ?? NaN)), 2)} | ${fmt(median(ms.map((m) => m.p99Ms ?? NaN)), 2)} | ${cpu} | ${fmt(median(ms.map((m) => m.rssMiB ?? NaN)), 0)} | ${ms.reduce((n, m) => n + (m.errors ?? 0), 0)} |`,
        );
      }
    }
    lines.push(...cpuStandings(results, key, peers.map((p) => p.name)));
    lines.push(...archiveCost(results, key, peers.map((p) => p.name)));
    lines.push(...interceptionCost(results, key, peers.map((p) => p.name)));
    if (getawayPeer !== undefined) lines.push('', `getaway holding 10,000 idle tunnels: ${fmt(idle10k, 1)} KiB per tunnel.`);
    const report = lines.join('\n');
    console.log(report);
    const out = join(ROOT, 'bench', 'results');
    if (!existsSync(out)) mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'latest.md'), `${report}\n`);
  } finally {
    stopAll();
  }
}

await main();
