/**
 * Three network namespaces joined by veth pairs, for tests of traffic that crosses a router:
 *
 *   client 10.201.1.2 / fd00:201:1::2 ──(lan)── 10.201.1.1 router 10.201.2.1 ──(wan)── 10.201.2.2 origin
 *                                                fd00:201:1::1      fd00:201:2::1      fd00:201:2::2
 *
 * The router forwards; the client's and the origin's default routes point at it. Names carry the test process's
 * pid, so parallel test files never share a namespace. Needs root (CI runs as root); without it `createTopology`
 * throws saying so, and the test fails rather than passing unseen.
 */
import { execFile, execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { TestContext } from 'node:test';

export const ADDRESSES = {
  client: { v4: '10.201.1.2', v6: 'fd00:201:1::2' },
  routerLan: { v4: '10.201.1.1', v6: 'fd00:201:1::1' },
  routerWan: { v4: '10.201.2.1', v6: 'fd00:201:2::1' },
  origin: { v4: '10.201.2.2', v6: 'fd00:201:2::2' },
} as const;

export interface Topology {
  readonly client: string;
  readonly router: string;
  readonly origin: string;
  /** The router's interface facing the client: where redirect rules match. */
  readonly lanInterface: string;
  /** Runs a command in a namespace to its end (at most `timeoutMs`, default 20 s). */
  exec(namespace: string, command: string, args: string[], options?: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Starts a long-running command in a namespace; killed when the test ends. */
  spawn(namespace: string, command: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcessWithoutNullStreams;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let counter = 0;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Fails with the reason when this machine cannot make namespaces (no root, no iproute2, a sandbox that forbids it). */
function checkCanCreate(): void {
  if (process.getuid?.() !== 0) throw new Error('transparent-mode tests need root to create network namespaces (CI runs as root); run them as root');
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
    execFileSync('iptables', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('transparent-mode tests need iproute2, nftables and iptables (apt-get install iproute2 nftables iptables; .ci/run does)');
  }
}

export function createTopology(t: TestContext, hosts: Record<string, string> = {}): Topology {
  checkCanCreate();
  const id = `${process.pid % 100_000}${counter++}`;
  const client = `ga-c${id}`;
  const router = `ga-r${id}`;
  const origin = `ga-o${id}`;
  const names = [client, router, origin];
  const etc = `/etc/netns/${router}`;
  const cleanup = (): void => {
    for (const name of names) {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        // never created, or already gone
      }
    }
    rmSync(etc, { recursive: true, force: true });
  };
  t.after(cleanup);
  try {
    for (const name of names) ip('netns', 'add', name);
  } catch (err) {
    cleanup();
    throw new Error(`cannot create network namespaces here (ip netns add failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? err}); transparent-mode tests need them`);
  }
  // veth names are at most 15 characters.
  const lanClient = `vc${id}`;
  const lanRouter = `vl${id}`;
  const wanRouter = `vw${id}`;
  const wanOrigin = `vo${id}`;
  ip('link', 'add', lanClient, 'netns', client, 'type', 'veth', 'peer', 'name', lanRouter, 'netns', router);
  ip('link', 'add', wanRouter, 'netns', router, 'type', 'veth', 'peer', 'name', wanOrigin, 'netns', origin);
  const address = (namespace: string, device: string, v4: string, v6: string): void => {
    ip('-n', namespace, 'addr', 'add', `${v4}/24`, 'dev', device);
    // nodad: the address is usable at once, not after duplicate address detection's second or two.
    ip('-n', namespace, 'addr', 'add', `${v6}/64`, 'dev', device, 'nodad');
    ip('-n', namespace, 'link', 'set', device, 'up');
  };
  address(client, lanClient, ADDRESSES.client.v4, ADDRESSES.client.v6);
  address(router, lanRouter, ADDRESSES.routerLan.v4, ADDRESSES.routerLan.v6);
  address(router, wanRouter, ADDRESSES.routerWan.v4, ADDRESSES.routerWan.v6);
  address(origin, wanOrigin, ADDRESSES.origin.v4, ADDRESSES.origin.v6);
  for (const name of names) ip('-n', name, 'link', 'set', 'lo', 'up');
  ip('-n', client, 'route', 'add', 'default', 'via', ADDRESSES.routerLan.v4);
  ip('-n', client, '-6', 'route', 'add', 'default', 'via', ADDRESSES.routerLan.v6);
  ip('-n', origin, 'route', 'add', 'default', 'via', ADDRESSES.routerWan.v4);
  ip('-n', origin, '-6', 'route', 'add', 'default', 'via', ADDRESSES.routerWan.v6);
  execFileSync('ip', ['netns', 'exec', router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'], { stdio: 'ignore' });
  // `ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts: names the router (getaway) resolves.
  mkdirSync(etc, { recursive: true });
  writeFileSync(`${etc}/hosts`, ['127.0.0.1 localhost', '::1 localhost', ...Object.entries(hosts).map(([name, ip]) => `${ip} ${name}`)].join('\n') + '\n');

  const children: ChildProcessWithoutNullStreams[] = [];
  t.after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    client,
    router,
    origin,
    lanInterface: lanRouter,
    exec(namespace, command, args, options = {}) {
      return new Promise((resolve) => {
        const child = execFile('ip', ['netns', 'exec', namespace, command, ...args], { env: options.env ?? process.env, timeout: options.timeoutMs ?? 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
        });
        child.stdin?.end(options.input ?? '');
      });
    },
    spawn(namespace, command, args, env = process.env) {
      const child = spawn('ip', ['netns', 'exec', namespace, command, ...args], { stdio: 'pipe', env });
      children.push(child);
      return child;
    },
  };
}

/** Resolves with the first JSON line of `child`'s stdout that `match` accepts; every line is kept in `lines`. */
export function waitForLine(
  child: ChildProcessWithoutNullStreams,
  lines: Array<Record<string, unknown>>,
  match: (line: Record<string, unknown>) => boolean,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const seen = lines.find(match);
    if (seen !== undefined) {
      resolve(seen);
      return;
    }
    let stderr = '';
    const onStderr = (chunk: Buffer): void => void (stderr += chunk.toString());
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no matching line within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    const onLine = (line: Record<string, unknown>): void => {
      if (!match(line)) return;
      cleanup();
      resolve(line);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`exited with ${code} before the line came; stderr: ${stderr}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      listeners.delete(onLine);
      child.stderr.removeListener('data', onStderr);
      child.removeListener('exit', onExit);
    };
    const listeners = readLines(child, lines);
    listeners.add(onLine);
    child.stderr.on('data', onStderr);
    child.once('exit', onExit);
  });
}

const lineReaders = new WeakMap<ChildProcessWithoutNullStreams, Set<(line: Record<string, unknown>) => void>>();

/** Parses `child`'s stdout into JSON lines once, however many waiters there are. */
function readLines(child: ChildProcessWithoutNullStreams, lines: Array<Record<string, unknown>>): Set<(line: Record<string, unknown>) => void> {
  let listeners = lineReaders.get(child);
  if (listeners !== undefined) return listeners;
  const created = new Set<(line: Record<string, unknown>) => void>();
  listeners = created;
  lineReaders.set(child, created);
  let pending = '';
  child.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      const text = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      for (const listener of [...created]) listener(line);
    }
  });
  return created;
}
