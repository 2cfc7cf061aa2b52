/**
 * What the benchmark scripts share: building the Go peers, starting processes in their own process group (so they
 * can be measured and stopped as one), reading a group's CPU time from /proc, and waiting for a port.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The origin's 64 MiB body framed chunked, 16 KiB a chunk (bench/peers/origin.go): the chunked download rows. */
export const CHUNKED_64M_PATH = '/64m-chunked?chunk=16384';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** A Node peer's script in the build: `peerScript('minimal-proxy')` → dist/bench/peers/minimal-proxy.js. */
export function peerScript(name: 'minimal-proxy' | 'npm-proxy'): string {
  return join(ROOT, 'dist', 'bench', 'peers', `${name}.js`);
}

export function have(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs the Debian packages whose commands are missing (as root), or says what to install. */
export function ensureDebianTools(wanted: Record<string, string>): void {
  const missing = Object.entries(wanted).filter(([command]) => !have(command)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing tools; install them with: sudo apt-get install ${missing.join(' ')}`);
  console.error(`installing ${missing.join(' ')} from Debian…`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** The Node flags on the CLI's first line (`#!/usr/bin/env -S node --flag …`): `npx getaway` runs it with them. */
export function cliNodeFlags(cli: string): string[] {
  const first = readFileSync(cli, 'utf8').split('\n', 1)[0] ?? '';
  return first.startsWith('#!') ? first.split(/\s+/).filter((word) => word.startsWith('--')) : [];
}

/** Builds bench/peers/<name>.go into `work` with Debian's Go, offline. */
export function buildGo(work: string, name: string): string {
  const out = join(work, name);
  execFileSync('go', ['build', '-o', out, join(ROOT, 'bench', 'peers', `${name}.go`)], {
    stdio: 'inherit',
    env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '', CGO_ENABLED: '0', GOCACHE: join(work, 'gocache'), GOPATH: join(work, 'gopath') },
  });
  return out;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Runs a command in its own process group with a high fd limit, so it and its children can be measured and
 * stopped. `cpus` pins it (taskset) to those CPUs.
 */
export function launch(command: string, args: string[], stdout: 'ignore' | 'pipe' = 'ignore', cpus?: string): ChildProcess {
  const pin = cpus === undefined ? [] : ['taskset', '-c', cpus];
  return spawn('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"', 'bench', ...pin, command, ...args], {
    detached: true,
    stdio: ['ignore', stdout, 'inherit'],
  });
}

export function stopGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const fields = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(fields[2]) === pgid) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** CPU seconds used so far by every process of the group. */
export function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  for (const pid of groupPids(pgid)) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks / CLK_TCK;
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
