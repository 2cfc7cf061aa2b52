/**
 * `npm run bench:clients`: node:http's Agent against undici's Pool as the origin client of a minimal proxy, and
 * getaway itself, under the keep-alive 1 KiB row (wrk, 50 connections, 1 thread). Interleaved, repeated, medians.
 * It answers the "undici or node:http agents: measure both" before getaway's forwarding is rebuilt on one.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGo, cliNodeFlags, median, peerScript, ROOT } from './support.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

const REPS = Number(process.env['BENCH_REPS'] ?? 3);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const work = mkdtempSync(join(tmpdir(), 'getaway-clients-'));

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => child.stdout!.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
}

const origin = buildGo(work, 'origin');
const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
const originProcess = spawn(origin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(originProcess);
const httpPort = Number((await firstLine(originProcess)).split(' ')[0]);

const contenders: Record<string, string[]> = {
  'minimal proxy, node:http Agent': [peerScript('minimal-proxy'), 'http'],
  'minimal proxy, undici Pool': [peerScript('minimal-proxy'), 'undici'],
  'getaway (node:http Agent, flow log on)': [...cliNodeFlags(CLI), CLI, 'serve', '--listen', '127.0.0.1:0'],
};
const ports = new Map<string, number>();
for (const [name, args] of Object.entries(contenders)) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const line = await firstLine(child);
  ports.set(name, Number(/"port":(\d+)/.exec(line)?.[1] ?? line));
  // Keep draining stdout (getaway logs every flow) so no contender blocks on a full pipe.
  child.stdout!.resume();
}
const results = new Map<string, number[]>();
for (let rep = 0; rep < REPS; rep++) {
  for (const name of Object.keys(contenders)) {
    const out = execFileSync('wrk', ['-t1', '-c50', `-d${SECONDS}s`, '-s', join(ROOT, 'bench', 'wrk-proxy.lua'), `http://127.0.0.1:${ports.get(name)}`], {
      env: { ...process.env, TARGET: `http://127.0.0.1:${httpPort}/1k` },
    }).toString();
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    // A contender that answers errors fast would look fast: a run with any non-2xx answer or socket error counts as 0.
    const failed = /Non-2xx or 3xx responses: (\d+)|Socket errors: .*/.exec(out);
    if (failed !== null) {
      process.stderr.write(`rep ${rep + 1} ${name}: ${failed[0]}; counted as 0\n`);
      results.set(name, [...(results.get(name) ?? []), 0]);
      continue;
    }
    results.set(name, [...(results.get(name) ?? []), rps]);
    process.stderr.write(`rep ${rep + 1} ${name}: ${rps.toFixed(0)} req/s\n`);
  }
}
console.log(`keep-alive 1 KiB, wrk -t1 -c50, ${REPS} × ${SECONDS} s, medians:`);
for (const [name, values] of results) console.log(`  ${name}: ${median(values).toFixed(0)} req/s`);
for (const child of children) child.kill('SIGKILL');
