/** Runs the real CLI (`node dist/src/cli/main.js serve …`) as a child process and reads its JSON log lines. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export const CLI_PATH = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface RunCliOptions {
  /** Written to the CLI's stdin, which is then closed (by default it is closed at once). */
  input?: string;
  /** Called with the child as soon as it is spawned. */
  onStart?: (child: ChildProcessWithoutNullStreams) => void;
  timeoutMs?: number;
}

/** Runs the CLI to its end (at most 10 s unless told) and collects what it printed. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env, options: RunCliOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: 'pipe', env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
    options.onStart?.(child);
  });
}

export interface CliProxy {
  child: ChildProcessWithoutNullStreams;
  url: string;
  port: number;
  /** Every JSON log line parsed so far. */
  lines: Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export function startCliProxy(t: TestContext, args: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<CliProxy> {
  const child = spawn(process.execPath, [CLI_PATH, 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: 'pipe', env });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return listeningCli(child);
}

/**
 * The CLI as the README starts it, `npx getaway serve`, from the repository root. npx runs the bin through a shell,
 * so the proxy is a grandchild: the whole process group is killed afterwards.
 */
export function startNpxProxy(t: TestContext, args: string[] = []): Promise<CliProxy> {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  // The first npx in a checkout links it into npx's cache as a `file:` dependency, which runs its `prepare` script:
  // a rebuild of dist/ while other test files start the CLI from it (two failures in four fresh clones, a module
  // read half-written). Without scripts, npx runs the bin as it would otherwise.
  const env = { ...process.env, npm_config_ignore_scripts: 'true' };
  const child = spawn('npx', ['--no-install', 'getaway', 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: 'pipe', cwd: root, detached: true, env });
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  });
  return listeningCli(child);
}

export async function listeningCli(child: ChildProcessWithoutNullStreams): Promise<CliProxy> {
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  let pending = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`CLI did not report listening within 10 s; stderr: ${stderr}`)), 10_000);
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = JSON.parse(pending.slice(0, newline)) as Record<string, unknown>;
        pending = pending.slice(newline + 1);
        lines.push(line);
        if (typeof line['url'] === 'string') {
          clearTimeout(timer);
          resolve(line);
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`CLI exited with ${code} before listening; stderr: ${stderr}`));
    });
  });
  const banner = await listening;
  return { child, url: banner['url'] as string, port: banner['port'] as number, lines, stderr: () => stderr, exited };
}
