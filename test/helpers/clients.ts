/** Real clients for tests: curl, Python requests, and a raw socket for wire-level assertions. */
import { execFile, execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<ProcessResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: env ?? process.env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** curl with a bounded run time; `--noproxy ''` keeps an ambient NO_PROXY from bypassing the proxy under test. */
export function curl(args: string[], timeoutMs = 15_000, env?: NodeJS.ProcessEnv): Promise<ProcessResult> {
  return run('curl', ['--silent', '--show-error', '--max-time', String(Math.ceil(timeoutMs / 1000)), '--noproxy', '', ...args], timeoutMs + 2000, env);
}

let python: string | undefined;

/** Debian's python3 with python3-requests (preferred), else any python3 on PATH that has requests. */
export function pythonWithRequests(): string {
  if (python !== undefined) return python;
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(candidate, ['-c', 'import requests'], { stdio: 'ignore' });
      python = candidate;
      return candidate;
    } catch {
      // try the next interpreter; the error is reported below if none works
    }
  }
  throw new Error('no python3 with the requests module: install Debian python3-requests (.ci/run does)');
}

export function runPython(script: string, args: string[], timeoutMs = 15_000): Promise<ProcessResult> {
  const env = { ...process.env };
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy']) delete env[name];
  return run(pythonWithRequests(), ['-c', script, ...args], timeoutMs, env);
}

/** A connected raw socket plus helpers to read what arrives, for tests that care about exact bytes. */
export interface RawConnection {
  socket: Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves when the received bytes contain `text` (rejects on timeout). */
  waitFor(text: string, timeoutMs?: number): Promise<string>;
  /** Resolves with everything received once the peer ended or closed (rejects on timeout). */
  untilEnd(timeoutMs?: number): Promise<Buffer>;
  ended(): boolean;
}

export function rawConnect(port: number, host = '127.0.0.1'): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let ended = false;
    const waiters = new Set<() => void>();
    const notify = (): void => {
      for (const waiter of waiters) waiter();
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      notify();
    });
    socket.on('end', () => {
      ended = true;
      notify();
    });
    socket.on('close', () => {
      ended = true;
      notify();
    });
    socket.on('error', () => {
      ended = true;
      notify();
    });
    const received = (): Buffer => Buffer.concat(chunks);
    const wait = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
      new Promise((res, rej) => {
        const attempt = (): void => {
          const value = check();
          if (value !== undefined) {
            cleanup();
            res(value);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(received().toString('latin1').slice(0, 500))}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(attempt);
        };
        waiters.add(attempt);
        attempt();
      });
    socket.once('connect', () =>
      resolve({
        socket,
        received,
        ended: () => ended,
        waitFor: (text, timeoutMs = 5000) =>
          wait(() => {
            const all = received().toString('latin1');
            return all.includes(text) ? all : undefined;
          }, timeoutMs, JSON.stringify(text)),
        untilEnd: (timeoutMs = 5000) => wait(() => (ended ? received() : undefined), timeoutMs, 'end of connection'),
      }),
    );
    socket.once('error', reject);
  });
}
