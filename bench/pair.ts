/**
 * `npm run bench:pair -- <checkout A> <checkout B> [keepalive|setup]`: which of two getaway builds spends less CPU
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
 * Env: BENCH_REPS (5), BENCH_SECONDS (4). Both run the CLI's default setup (flow log on, to /dev/null).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildGo, ensureDebianTools, freePort, groupCpuSeconds, launch, median, ROOT, stopGroup, waitForPort } from './support.js';

type Row = 'keepalive' | 'setup';

const [dirA, dirB, rowArg = 'keepalive'] = process.argv.slice(2);
if (dirA === undefined || dirB === undefined || (rowArg !== 'keepalive' && rowArg !== 'setup')) {
  console.error('usage: npm run bench:pair -- <checkout A> <checkout B> [keepalive|setup]');
  process.exit(2);
}
const row: Row = rowArg;
const REPS = Number(process.env['BENCH_REPS'] ?? 5);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
// Both proxies share CPU 0; load generators and the origin get the rest.
const PROXY_CPU = '0';
const LOAD_CPUS = availableParallelism() > 1 ? `1-${availableParallelism() - 1}` : '0';

function cliOf(dir: string): string {
  const cli = join(resolve(dir), 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`${cli} not found: run npm ci && npm run build in ${dir}`);
  return cli;
}

function runLoad(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((done, fail) =>
    execFile('taskset', ['-c', LOAD_CPUS, ...args], { env: { ...process.env, ...env }, timeout: SECONDS * 1000 + 30_000 }, (err, stdout) =>
      err ? fail(err) : done(stdout),
    ),
  );
}

/** Drives one proxy for `seconds`; resolves with the operations completed, refusing runs that saw errors. */
async function drive(port: number, seconds: number, origin: { http: number; raw: number }, tunnelbench: string): Promise<number> {
  if (row === 'keepalive') {
    const out = await runLoad(['wrk', '-t1', '-c50', `-d${seconds}s`, '-s', join(ROOT, 'bench', 'wrk-proxy.lua'), `http://127.0.0.1:${port}`], {
      TARGET: `http://127.0.0.1:${origin.http}/1k`,
    });
    const failed = /Non-2xx or 3xx responses: \d+|Socket errors: .*/.exec(out);
    if (failed !== null) throw new Error(`proxy on ${port}: ${failed[0]}`);
    return Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  }
  const out = await runLoad([tunnelbench, '-proxy', `127.0.0.1:${port}`, '-target', `127.0.0.1:${origin.raw}`, '-mode', 'setup', '-c', '50', '-d', `${seconds}s`]);
  const result = JSON.parse(out) as { tunnels: number; failures: number };
  if (result.failures > 0) throw new Error(`proxy on ${port}: ${result.failures} tunnels failed`);
  return result.tunnels;
}

interface Started {
  port: number;
  pgid: number;
}

async function startGetaway(cli: string): Promise<Started> {
  const port = await freePort();
  const child: ChildProcess = launch(process.execPath, [cli, 'serve', '--listen', `127.0.0.1:${port}`], 'ignore', PROXY_CPU);
  await waitForPort(port);
  return { port, pgid: child.pid! };
}

async function main(): Promise<void> {
  ensureDebianTools({ wrk: 'wrk', go: 'golang-go', taskset: 'util-linux' });
  const cliA = cliOf(dirA!);
  const cliB = cliOf(dirB!);
  const work = mkdtempSync(join(tmpdir(), 'getaway-pair-'));
  const originBin = buildGo(work, 'origin');
  const tunnelbench = buildGo(work, 'tunnelbench');
  const originProcess = launch(originBin, [], 'pipe', LOAD_CPUS);
  const groups: number[] = [originProcess.pid!];
  process.on('exit', () => groups.forEach(stopGroup));
  const [http, raw] = await new Promise<number[]>((done) =>
    originProcess.stdout!.once('data', (chunk: Buffer) => done(chunk.toString().trim().split(' ').map(Number))),
  );
  const origin = { http: http!, raw: raw! };
  const unit = row === 'keepalive' ? 'µs/request' : 'µs/tunnel';
  console.log(`${row}: proxy CPU per operation, A = ${dirA}, B = ${dirB}, both pinned to CPU ${PROXY_CPU}, ${REPS} × ${SECONDS} s`);
  const ratios: number[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    const a = await startGetaway(cliA);
    const b = await startGetaway(cliB);
    groups.push(a.pgid, b.pgid);
    // Warm-up (JIT, pools) before anything is counted.
    await Promise.all([drive(a.port, 1, origin, tunnelbench), drive(b.port, 1, origin, tunnelbench)]);
    const cpuA = groupCpuSeconds(a.pgid);
    const cpuB = groupCpuSeconds(b.pgid);
    const [opsA, opsB] = await Promise.all([drive(a.port, SECONDS, origin, tunnelbench), drive(b.port, SECONDS, origin, tunnelbench)]);
    const perOpA = ((groupCpuSeconds(a.pgid) - cpuA) / opsA!) * 1e6;
    const perOpB = ((groupCpuSeconds(b.pgid) - cpuB) / opsB!) * 1e6;
    stopGroup(a.pgid);
    stopGroup(b.pgid);
    ratios.push(perOpB / perOpA);
    console.log(`  rep ${rep}: A ${perOpA.toFixed(1)} ${unit} (${opsA} ops), B ${perOpB.toFixed(1)} ${unit} (${opsB} ops), B/A ${(perOpB / perOpA).toFixed(2)}`);
  }
  console.log(`median B/A: ${median(ratios).toFixed(2)} (below 1: B spends less CPU per operation)`);
}

await main();
process.exit(0);
