/**
 * `npm run bench:pair -- <checkout A> <checkout B> [keepalive|newconn|setup|bulk|upload|get64m|get64m-chunked|post64m|post64m-chunked|mitm-keepalive|mitm-get64m]`: which of two getaway builds spends less CPU
 * per request (or per tunnel), measured so that the machine's noise cancels out.
 *
 * Sequential runs on this kind of shared 2-core VM move 20–30 % between identical runs, which hides any change
 * worth making to the hot path. Here both builds run at the same time, pinned to the same CPU, each under its own
 * load generator (pinned to the other CPUs with the origin), so whatever the machine does to one it does to the
 * other. Each repetition reports proxy CPU per operation for both and the ratio B/A. Seen here with the same
 * build as A and B: single repetitions 0.90–1.02, median of four 0.99; so trust a median of five that moves more
 * than about 5 %, not one repetition. Absolute figures are not comparable with
 * `npm run bench` (two proxies share a core here); only the ratio is the result.
 *
 * A checkout is a directory with a built getaway (dist/src/cli/main.js), for example the current tree and a
 * worktree of an earlier commit:
 *   git worktree add /tmp/getaway-base HEAD~1 && (cd /tmp/getaway-base && npm ci && npm run build)
 *   npm run bench:pair -- /tmp/getaway-base . keepalive
 * `minimal` in place of a checkout runs bench/peers/minimal-proxy.js (node:http, no flows, hooks or log), and
 * `npm-proxy` the npm `proxy` package (bench/peers/npm-proxy.js):
 *   npm run bench:pair -- minimal . setup     # what getaway costs over the least a Node proxy does
 * Env: BENCH_REPS (5), BENCH_SECONDS (4), BENCH_WARMUP (5 s of load before each measurement). Checkouts run the CLI's default setup (flow log on, to /dev/null);
 * BENCH_ARGS_A / BENCH_ARGS_B add serve flags to one side, so one build can be compared with itself under an option:
 *   BENCH_ARGS_B='--admin 0' npm run bench:pair -- . . keepalive      # what keeping metrics costs
 *   BENCH_ARGS_A='--no-kernel-splice' npm run bench:pair -- . . bulk   # the kernel's copy against JavaScript's
 * and BENCH_NODE_ARGS_A / BENCH_NODE_ARGS_B add Node flags (BENCH_NODE_ARGS_B='--single-threaded-gc').
 * BENCH_GC=1 adds allocation and promotion per operation, BENCH_STRACE=1 system calls per operation by name, and
 * BENCH_PERF=1 CPU per operation by function (perf, kernel and native code included) for both sides.
 * BENCH_PRIME=<row> drives another load first (BENCH_PRIME_SECONDS, 8): BENCH_PRIME=keepalive npm run bench:pair -- minimal . bulk
 * The mitm rows run both checkouts with `--mitm` (one CA for both, the origin's certificate not verified) and fetch
 * over HTTPS through them (bench/peers/httpsload.go): 1 KiB on 50 connections, or 64 MiB bodies on one. post64m
 * POSTs 64 MiB bodies over plain HTTP to the origin's sink, on one client connection (the request body path). The
 * -chunked rows frame the bodies chunked instead of with a Content-Length: 16 KiB chunks from the origin, 32 KiB
 * chunks from the client.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { initCertificateAuthority } from '../src/mitm/certificate-authority.js';
import { CA_CERT_FILE } from '../src/mitm/ca-files.js';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildGo, CHUNKED_64M_PATH, cliNodeFlags, ensureDebianTools, freePort, groupCpuSeconds, launch, median, peerScript, ROOT, stopGroup, waitForPort } from './support.js';

type Row = 'keepalive' | 'newconn' | 'setup' | 'bulk' | 'upload' | 'get64m' | 'get64m-chunked' | 'post64m' | 'post64m-chunked' | 'mitm-keepalive' | 'mitm-get64m';

const ROWS: readonly string[] = ['keepalive', 'newconn', 'setup', 'bulk', 'upload', 'get64m', 'get64m-chunked', 'post64m', 'post64m-chunked', 'mitm-keepalive', 'mitm-get64m'] satisfies Row[];
const [dirA, dirB, rowArg = 'keepalive'] = process.argv.slice(2);
if (dirA === undefined || dirB === undefined || !ROWS.includes(rowArg)) {
  console.error('usage: npm run bench:pair -- <checkout A | minimal | npm-proxy> <checkout B | minimal | npm-proxy> [keepalive|newconn|setup|bulk|upload|get64m|get64m-chunked|post64m|post64m-chunked|mitm-keepalive|mitm-get64m]');
  process.exit(2);
}
const row = rowArg as Row;
const MITM = row === 'mitm-keepalive' || row === 'mitm-get64m';
if (MITM && [dirA, dirB].some((side) => side === 'minimal' || side === 'npm-proxy')) {
  console.error('the mitm rows compare two getaway checkouts');
  process.exit(2);
}
const REPS = Number(process.env['BENCH_REPS'] ?? 5);
// With BENCH_GC=1 both run under --trace-gc and the allocation and old-generation promotion per operation are reported too.
const TRACE_GC = process.env['BENCH_GC'] === '1';
// With BENCH_STRACE=1 the measured window runs under `strace -c -f` and the system calls per operation are listed by
// name for both sides. strace slows both proxies, so the CPU ratio of such a run is not a result; the counts are.
const STRACE = process.env['BENCH_STRACE'] === '1';
// With BENCH_PERF=1 the measured window is sampled by `perf record -e cpu-clock` (both sides run with
// --perf-basic-prof, so JIT-compiled JavaScript has names) and the CPU per operation is listed by function, kernel
// and native code included, the functions whose cost differs most first. BENCH_PERF_TOP (25) rows.
const PERF = process.env['BENCH_PERF'] === '1';
const PERF_HZ = 4999;
const PERF_TOP = Number(process.env['BENCH_PERF_TOP'] ?? 25);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
// V8 was seen still optimising getaway's CONNECT path 3–4 s into a load (--trace-opt); the smaller minimal proxy
// settles sooner. With BENCH_WARMUP=1 getaway read 1.73x/2.64x/2.19x the minimal proxy's CPU on keepalive/newconn/
// setup, with the default 1.46x/2.06x/1.63x.
const WARMUP_SECONDS = Number(process.env['BENCH_WARMUP'] ?? 5);
// BENCH_PRIME=<row> drives that load for BENCH_PRIME_SECONDS (8) before the row's own warm-up, so a row can be measured on
// processes that served something else first, as in a long-running proxy (and in `npm run bench`, where every row
// runs on the processes the rows before it used). `BENCH_PRIME=keepalive BENCH_WARMUP=0 BENCH_GC=1 npm run
// bench:pair -- minimal . bulk` is how getaway's mark-compacts during tunnel bulk after keep-alive load were found
// (the CLI's first line says more).
const PRIME = process.env['BENCH_PRIME'] as Row | undefined;
const PRIME_SECONDS = Number(process.env['BENCH_PRIME_SECONDS'] ?? 8);
if (PRIME !== undefined && !ROWS.includes(PRIME)) {
  console.error('BENCH_PRIME is one of keepalive, newconn, setup, bulk, upload, get64m, get64m-chunked, post64m, post64m-chunked, mitm-keepalive, mitm-get64m');
  process.exit(2);
}
// Both proxies share CPU 0; load generators and the origin get the rest.
const PROXY_CPU = '0';
const LOAD_CPUS = availableParallelism() > 1 ? `1-${availableParallelism() - 1}` : '0';

/** An environment variable's value as command-line words (none when unset or blank). */
function words(value: string | undefined): string[] {
  return value?.split(/\s+/).filter((word) => word !== '') ?? [];
}

/**
 * Node's arguments to serve on `port`: a checkout's CLI (with the Node flags of its shebang, as `npx getaway` runs
 * it, then `nodeArgs`, which may override them), or `minimal` for bench/peers/minimal-proxy.
 */
function commandOf(side: string, extraArgs: string | undefined, nodeArgs: string | undefined): (port: number) => string[] {
  if (side === 'minimal') return (port) => [...words(nodeArgs), peerScript('minimal-proxy'), 'http', String(port)];
  if (side === 'npm-proxy') return (port) => [...words(nodeArgs), peerScript('npm-proxy'), String(port)];
  const cli = join(resolve(side), 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`${cli} not found: run npm ci && npm run build in ${side}`);
  return (port) => [...cliNodeFlags(cli), ...words(nodeArgs), cli, 'serve', '--listen', `127.0.0.1:${port}`, ...words(extraArgs)];
}

function runLoad(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((done, fail) =>
    execFile('taskset', ['-c', LOAD_CPUS, ...args], { env: { ...process.env, ...env }, timeout: SECONDS * 1000 + 30_000 }, (err, stdout) =>
      err ? fail(err) : done(stdout),
    ),
  );
}

/** The Go clients, and the CA the mitm rows' clients trust. */
interface Tools {
  tunnelbench: string;
  httpsload: string;
  caFile: string;
}

/** Drives one proxy for `seconds`; resolves with the operations completed, refusing runs that saw errors. */
async function drive(port: number, seconds: number, origin: { http: number; raw: number; tls: number }, tools: Tools, load: Row = row): Promise<number> {
  const { tunnelbench } = tools;
  if (load === 'mitm-keepalive' || load === 'mitm-get64m') {
    // HTTPS through the intercepting proxy; an operation is a request, or one MiB of the 64 MiB bodies.
    const big = load === 'mitm-get64m';
    const out = await runLoad([tools.httpsload, '-proxy', `127.0.0.1:${port}`, '-url', `https://127.0.0.1:${origin.tls}/${big ? '64m' : '1k'}`, '-ca', tools.caFile, '-c', big ? '1' : '50', '-d', `${seconds}s`]);
    const result = JSON.parse(out) as { requests: number; bytes: number; failures: number };
    if (result.failures > 0) throw new Error(`proxy on ${port}: ${result.failures} requests failed`);
    return big ? result.bytes / 1048576 : result.requests;
  }
  if (load === 'keepalive' || load === 'newconn') {
    // newconn: "Connection: close" on every request, so each one opens a connection to the proxy.
    const out = await runLoad(['wrk', '-t1', '-c50', `-d${seconds}s`, '--timeout', '10s', '-s', join(ROOT, 'bench', 'wrk-proxy.lua'), `http://127.0.0.1:${port}`], {
      TARGET: `http://127.0.0.1:${origin.http}/1k`,
      CLOSE: load === 'newconn' ? '1' : '0',
    });
    const failed = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(out);
    if (failed !== null) throw new Error(`proxy on ${port}: ${failed[0]}`);
    return Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  }
  if (load === 'get64m' || load === 'get64m-chunked') {
    // One keep-alive connection pulling 64 MiB bodies (the plain-HTTP body path); an operation is one MiB.
    const path = load === 'get64m' ? '/64m' : CHUNKED_64M_PATH;
    const out = await runLoad(['wrk', '-t1', '-c1', `-d${seconds}s`, '--timeout', '10s', '-s', join(ROOT, 'bench', 'wrk-proxy.lua'), `http://127.0.0.1:${port}`], {
      TARGET: `http://127.0.0.1:${origin.http}${path}`,
    });
    const failed = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(out);
    if (failed !== null) throw new Error(`proxy on ${port}: ${failed[0]}`);
    return Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN) * 64;
  }
  if (load === 'post64m' || load === 'post64m-chunked') {
    // One client POSTing 64 MiB bodies to the origin's sink (the plain-HTTP request body path); an operation is one MiB.
    // Chunked: 32 KiB chunks and no Content-Length.
    const chunked = load === 'post64m-chunked' ? ['-chunked'] : [];
    const out = await runLoad([tools.httpsload, '-proxy', `127.0.0.1:${port}`, '-url', `http://127.0.0.1:${origin.http}/sink`, '-post', String(64 * 1048576), ...chunked, '-c', '1', '-d', `${seconds}s`]);
    const result = JSON.parse(out) as { bytes: number; failures: number };
    if (result.failures > 0) throw new Error(`proxy on ${port}: ${result.failures} uploads failed`);
    return result.bytes / 1048576;
  }
  if (load === 'bulk' || load === 'upload') {
    // Two tunnels each pulling (upload: pushing) 128 MiB per second asked for; an operation is one MiB.
    const mib = Math.max(16, 128 * seconds);
    const out = await runLoad([tunnelbench, '-proxy', `127.0.0.1:${port}`, '-target', `127.0.0.1:${origin.raw}`, '-mode', load === 'bulk' ? 'bulk' : 'up', '-c', '2', '-mib', String(mib)]);
    return (JSON.parse(out) as { bytes: number }).bytes / 1048576;
  }
  const out = await runLoad([tunnelbench, '-proxy', `127.0.0.1:${port}`, '-target', `127.0.0.1:${origin.raw}`, '-mode', 'setup', '-c', '50', '-d', `${seconds}s`]);
  const result = JSON.parse(out) as { tunnels: number; failures: number };
  if (result.failures > 0) throw new Error(`proxy on ${port}: ${result.failures} tunnels failed`);
  return result.tunnels;
}

interface Started {
  port: number;
  pgid: number;
  /** --trace-gc lines so far (BENCH_GC=1). */
  gcLines: string[];
}

/**
 * From --trace-gc lines ("Scavenge 3.9 (4.0) -> 3.0 (5.0) MB"): megabytes allocated, as what the heap held at
 * each collection over what the one before left (everything allocated in between is there); and megabytes
 * promoted to the old generation, as how much the heap after each scavenge grew over the one before (a
 * mark-compact resets the baseline): objects that outlive a scavenge interval show up there.
 */
function gcFigures(lines: readonly string[]): { allocated: number; promoted: number; markCompacts: number } {
  let previous: number | undefined;
  let allocated = 0;
  let promoted = 0;
  let markCompacts = 0;
  for (const line of lines) {
    const match = /(Scavenge|Mark-Compact)\s+([\d.]+) \([\d.]+\) -> ([\d.]+) \(/.exec(line);
    if (match === null) continue;
    const before = Number(match[2]);
    const after = Number(match[3]);
    if (previous !== undefined && before > previous) allocated += before - previous;
    if (match[1] === 'Mark-Compact') markCompacts++;
    else if (previous !== undefined && after > previous) promoted += after - previous;
    previous = after;
  }
  return { allocated, promoted, markCompacts };
}

/** Counts the system calls of process `pid` and all its threads until the returned function is called. */
function countSyscalls(pid: number, file: string): () => Promise<Map<string, number>> {
  const strace = spawn('strace', ['-c', '-f', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  return async () => {
    strace.kill('SIGINT');
    await once(strace, 'exit');
    // strace -c rows: "% time  seconds  usecs/call  calls  [errors]  syscall".
    const counts = new Map<string, number>();
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const match = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
      if (match !== null && match[2] !== 'total') counts.set(match[2]!, Number(match[1]));
    }
    return counts;
  };
}

/** Samples process `pid`'s CPU until the returned function is called; then µs of CPU per symbol. */
function sampleCpu(pid: number, file: string): () => Promise<Map<string, number>> {
  const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', String(PERF_HZ), '-p', String(pid), '-o', file], { stdio: 'ignore' });
  return async () => {
    perf.kill('SIGINT');
    await once(perf, 'exit');
    const report = await new Promise<string>((done, fail) =>
      execFile('perf', ['report', '-i', file, '--stdio', '--no-children', '--sort', 'sym', '-n', '-q'], { maxBuffer: 64 * 1048576 }, (err, stdout) =>
        err ? fail(err) : done(stdout),
      ),
    );
    // Rows: "  12.34%  1234  [k] tcp_sendmsg" ([k] kernel, [.] user space).
    const micros = new Map<string, number>();
    for (const line of report.split('\n')) {
      const match = /^\s*[\d.]+%\s+(\d+)\s+(\[.\]\s+.*?)\s*$/.exec(line);
      if (match !== null) micros.set(match[2]!, (micros.get(match[2]!) ?? 0) + (Number(match[1]) / PERF_HZ) * 1e6);
    }
    return micros;
  };
}

/**
 * Both sides' figures per operation by name (system calls, or µs of CPU by function), the largest differences
 * first; names under 0.01 per operation on both sides are left out.
 */
function printPerOperation(title: string, a: Map<string, number>, opsA: number, b: Map<string, number>, opsB: number, top: number): void {
  const perOp = (figures: Map<string, number>, name: string, ops: number): number => (figures.get(name) ?? 0) / ops;
  const difference = (name: string): number => perOp(b, name, opsB) - perOp(a, name, opsA);
  const names = [...new Set([...a.keys(), ...b.keys()])]
    .filter((name) => perOp(a, name, opsA) >= 0.01 || perOp(b, name, opsB) >= 0.01)
    .sort((x, y) => Math.abs(difference(y)) - Math.abs(difference(x)));
  const total = (figures: Map<string, number>, ops: number): string => ([...figures.values()].reduce((sum, n) => sum + n, 0) / ops).toFixed(2);
  console.log(`         ${title} per operation: A ${total(a, opsA)}, B ${total(b, opsB)}; largest differences (B - A, A, B):`);
  for (const name of names.slice(0, top)) {
    const shown = name.length > 90 ? `${name.slice(0, 87)}...` : name;
    const sign = difference(name) >= 0 ? '+' : '-';
    console.log(`           ${sign}${Math.abs(difference(name)).toFixed(2).padStart(6)}  A ${perOp(a, name, opsA).toFixed(2).padStart(6)}  B ${perOp(b, name, opsB).toFixed(2).padStart(6)}  ${shown}`);
  }
}

async function startProxy(command: (port: number) => string[]): Promise<Started> {
  const port = await freePort();
  // --perf-basic-prof also turns on V8's code-event log, an isolate-*.log in the working directory (the checkout
  // the bench runs from); the perf map in /tmp is all the sampling needs.
  const flags = [...(TRACE_GC ? ['--trace-gc'] : []), ...(PERF ? ['--perf-basic-prof', '--logfile=/dev/null'] : [])];
  const child: ChildProcess = launch(process.execPath, [...flags, ...command(port)], TRACE_GC ? 'pipe' : 'ignore', PROXY_CPU);
  const gcLines: string[] = [];
  if (TRACE_GC) {
    let partial = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.includes('Scavenge') || line.includes('Mark-Compact')) gcLines.push(line);
    });
  }
  await waitForPort(port);
  return { port, pgid: child.pid!, gcLines };
}

async function main(): Promise<void> {
  ensureDebianTools({ wrk: 'wrk', go: 'golang-go', taskset: 'util-linux', ...(STRACE ? { strace: 'strace' } : {}), ...(PERF ? { perf: 'linux-perf' } : {}) });
  const work = mkdtempSync(join(tmpdir(), 'getaway-pair-'));
  const caDir = join(work, 'ca');
  if (MITM) await initCertificateAuthority(caDir);
  const mitmArgs = MITM ? `--mitm --ca-dir ${caDir} --insecure-upstream-tls ` : '';
  const commandA = commandOf(dirA!, mitmArgs + (process.env['BENCH_ARGS_A'] ?? ''), process.env['BENCH_NODE_ARGS_A']);
  const commandB = commandOf(dirB!, mitmArgs + (process.env['BENCH_ARGS_B'] ?? ''), process.env['BENCH_NODE_ARGS_B']);
  const originBin = buildGo(work, 'origin');
  const tools: Tools = { tunnelbench: buildGo(work, 'tunnelbench'), httpsload: MITM || [row, PRIME].some((load) => load?.startsWith('post64m')) ? buildGo(work, 'httpsload') : '', caFile: join(caDir, CA_CERT_FILE) };
  const originProcess = launch(originBin, [], 'pipe', LOAD_CPUS);
  const groups: number[] = [originProcess.pid!];
  process.on('exit', () => groups.forEach(stopGroup));
  const [http, raw, tls] = await new Promise<number[]>((done) =>
    originProcess.stdout!.once('data', (chunk: Buffer) => done(chunk.toString().trim().split(' ').map(Number))),
  );
  const origin = { http: http!, raw: raw!, tls: tls! };
  const perRequest = row === 'keepalive' || row === 'newconn' || row === 'mitm-keepalive';
  const unit = perRequest ? 'µs/request' : row === 'setup' ? 'µs/tunnel' : 'µs/MiB';
  const perThousand = perRequest ? 'requests' : row === 'setup' ? 'tunnels' : 'MiB';
  console.log(`${row}: proxy CPU per operation, A = ${dirA}, B = ${dirB}, both pinned to CPU ${PROXY_CPU}, ${REPS} × ${SECONDS} s`);
  const ratios: number[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    const a = await startProxy(commandA);
    const b = await startProxy(commandB);
    groups.push(a.pgid, b.pgid);
    if (PRIME !== undefined) {
      await Promise.all([drive(a.port, PRIME_SECONDS, origin, tools, PRIME), drive(b.port, PRIME_SECONDS, origin, tools, PRIME)]);
    }
    // Warm-up (JIT, pools) before anything is counted.
    await Promise.all([drive(a.port, WARMUP_SECONDS, origin, tools), drive(b.port, WARMUP_SECONDS, origin, tools)]);
    const syscallsA = STRACE ? countSyscalls(a.pgid, join(work, `strace-a-${rep}`)) : undefined;
    const syscallsB = STRACE ? countSyscalls(b.pgid, join(work, `strace-b-${rep}`)) : undefined;
    const profileA = PERF ? sampleCpu(a.pgid, join(work, `perf-a-${rep}`)) : undefined;
    const profileB = PERF ? sampleCpu(b.pgid, join(work, `perf-b-${rep}`)) : undefined;
    if (STRACE || PERF) await new Promise((done) => setTimeout(done, 500)); // strace or perf attaching to every thread
    const cpuA = groupCpuSeconds(a.pgid);
    const cpuB = groupCpuSeconds(b.pgid);
    const gcFromA = a.gcLines.length;
    const gcFromB = b.gcLines.length;
    const [opsA, opsB] = await Promise.all([drive(a.port, SECONDS, origin, tools), drive(b.port, SECONDS, origin, tools)]);
    const perOpA = ((groupCpuSeconds(a.pgid) - cpuA) / opsA!) * 1e6;
    const perOpB = ((groupCpuSeconds(b.pgid) - cpuB) / opsB!) * 1e6;
    const countsA = await syscallsA?.();
    const countsB = await syscallsB?.();
    const microsA = await profileA?.();
    const microsB = await profileB?.();
    stopGroup(a.pgid);
    stopGroup(b.pgid);
    ratios.push(perOpB / perOpA);
    console.log(`  rep ${rep}: A ${perOpA.toFixed(1)} ${unit} (${opsA!.toFixed(0)} ops), B ${perOpB.toFixed(1)} ${unit} (${opsB!.toFixed(0)} ops), B/A ${(perOpB / perOpA).toFixed(2)}`);
    if (countsA !== undefined && countsB !== undefined) printPerOperation('system calls', countsA, opsA!, countsB, opsB!, Infinity);
    if (microsA !== undefined && microsB !== undefined) printPerOperation('sampled CPU (µs)', microsA, opsA!, microsB, opsB!, PERF_TOP);
    if (TRACE_GC) {
      const gcA = gcFigures(a.gcLines.slice(gcFromA));
      const gcB = gcFigures(b.gcLines.slice(gcFromB));
      const rate = (mib: number, ops: number): string => ((mib * 1000) / ops).toFixed(2);
      console.log(
        `         per 1000 ${perThousand}: allocated MB A ${rate(gcA.allocated, opsA!)}, B ${rate(gcB.allocated, opsB!)}; promoted MB A ${rate(gcA.promoted, opsA!)}, B ${rate(gcB.promoted, opsB!)}; mark-compacts: A ${gcA.markCompacts}, B ${gcB.markCompacts}`,
      );
    }
  }
  if (STRACE) console.log('(under strace: the CPU figures above are slowed by it; compare the system call counts)');
  console.log(`median B/A: ${median(ratios).toFixed(2)} (below 1: B spends less CPU per operation)`);
}

await main();
process.exit(0);
