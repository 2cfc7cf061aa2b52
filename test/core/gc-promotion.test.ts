/**
 * A finished request must leave nothing behind that the young-generation collector has to keep. When something
 * old points at a request's objects (an old-space V8 map holding a closure, a long-lived Set's backing store),
 * every request's objects survive scavenges and are promoted, and the proxy spends a large share of its CPU
 * copying garbage: that happened twice (live-list.ts, upstream/flow-routes.ts). This reads the CLI's own
 * `--trace-gc-nvp` figures under a keep-alive load: memory behaviour, not timing, so it holds on a slow machine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { test } from 'node:test';
import { CLI_PATH } from '../helpers/cli-process.js';
import { startOrigin } from '../helpers/servers.js';

const BODY = Buffer.alloc(1024, 'x');
const CONNECTIONS = 10;

interface GcTracedProxy {
  port: number;
  /** Bytes promoted to the old generation by scavenges so far. */
  promoted(): number;
}

/** The CLI with `--trace-gc-nvp`: its stdout mixes JSON log lines and one name=value line per collection. */
async function startGcTracedCli(t: import('node:test').TestContext): Promise<GcTracedProxy> {
  const child = spawn(process.execPath, ['--trace-gc-nvp', CLI_PATH, 'serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let promoted = 0;
  let pending = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`CLI did not report listening within 10 s; stderr: ${stderr}`)), 10_000);
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.includes(' gc=s ')) promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
        else if (line.startsWith('{')) {
          const record = JSON.parse(line) as { port?: number };
          if (typeof record.port === 'number') {
            clearTimeout(timer);
            resolve(record.port);
          }
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`CLI exited with ${code}; stderr: ${stderr}`));
    });
  });
  return { port, promoted: () => promoted };
}

/** `count` absolute-form GETs over CONNECTIONS keep-alive connections. */
async function load(proxyPort: number, target: string, agent: Agent, count: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: proxyPort, path: target, agent }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          res.resume();
          res.once('end', resolve);
        });
        req.once('error', reject);
        req.end();
      });
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
}

test('keep-alive requests through the CLI promote (almost) nothing to the old generation', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end(BODY));
  const proxy = await startGcTracedCli(t);
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  t.after(() => agent.destroy());
  const target = `${origin.url}/1k`;
  // Warm-up: the young generation grows to its working size and the JIT settles.
  await load(proxy.port, target, agent, 1500);
  const before = proxy.promoted();
  const requests = 5000;
  await load(proxy.port, target, agent, requests);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last GC lines in the pipe
  const perRequest = (proxy.promoted() - before) / requests;
  t.diagnostic(`${perRequest.toFixed(0)} bytes promoted per request`);
  // Healthy: tens of bytes per request (what stays is pooled sockets and caches). With the object-literal getter
  // in flow-routes.ts it was about 6,000; a request's own allocation is about 30,000.
  assert.ok(perRequest < 1024, `${perRequest.toFixed(0)} bytes promoted per request`);
});
