/**
 * A finished request must leave nothing behind that the young-generation collector has to keep. When something
 * old points at a request's objects (an old-space V8 map holding a closure, a long-lived Set's backing store),
 * every request's objects survive scavenges and are promoted, and the proxy spends a large share of its CPU
 * copying garbage: that happened twice (live-list.ts, upstream/flow-routes.ts). Nor may a large body turn over
 * memory outside the heap (Buffers' backing stores), which V8 answers with full mark-compacts. These read the CLI's
 * own `--trace-gc` / `--trace-gc-nvp` lines under load: memory behaviour, not timing, so they hold on a slow machine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { CLI_PATH } from '../helpers/cli-process.js';
import { sendRepeated, startOrigin } from '../helpers/servers.js';
import { curl, type ProcessResult } from '../helpers/clients.js';
import { testGetawayCa } from '../helpers/getaway-ca.js';
import { testCertificates } from '../helpers/test-ca.js';

const BODY = Buffer.alloc(1024, 'x');
const CONNECTIONS = 10;

interface GcTracedProxy {
  port: number;
  /** The collector's lines printed so far (one per collection). */
  gcLines: string[];
}

/**
 * The CLI with a V8 tracing flag (`--trace-gc-nvp`: name=value figures, `--trace-gc`: one line with the reason):
 * its stdout mixes JSON log lines and one line per collection.
 */
async function startGcTracedCli(t: import('node:test').TestContext, traceFlag: '--trace-gc-nvp' | '--trace-gc', args: string[] = []): Promise<GcTracedProxy> {
  const child = spawn(process.execPath, [traceFlag, CLI_PATH, 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const gcLines: string[] = [];
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
        if (!line.startsWith('{')) gcLines.push(line);
        else {
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
  return { port, gcLines };
}

/** Bytes promoted to the old generation by the scavenges among `--trace-gc-nvp` lines. */
function promoted(lines: readonly string[]): number {
  let bytes = 0;
  for (const line of lines) if (line.includes(' gc=s ')) bytes += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
  return bytes;
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
  const proxy = await startGcTracedCli(t, '--trace-gc-nvp');
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  t.after(() => agent.destroy());
  const target = `${origin.url}/1k`;
  // Warm-up: the young generation grows to its working size and the JIT settles.
  await load(proxy.port, target, agent, 1500);
  const before = promoted(proxy.gcLines);
  const requests = 5000;
  await load(proxy.port, target, agent, requests);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last GC lines in the pipe
  const perRequest = (promoted(proxy.gcLines) - before) / requests;
  t.diagnostic(`${perRequest.toFixed(0)} bytes promoted per request`);
  // Healthy: tens of bytes per request (what stays is pooled sockets and caches). With the object-literal getter
  // in flow-routes.ts it was about 6,000; a request's own allocation is about 30,000.
  assert.ok(perRequest < 1024, `${perRequest.toFixed(0)} bytes promoted per request`);
});

test('a client slower than its TLS origin: the records held back for it do not churn memory outside the heap', { timeout: 60_000 }, async (t) => {
  const certs = testCertificates();
  const mebibyte = Buffer.alloc(1024 * 1024, 'y');
  const mebibytes = 256;
  const origin = createHttpsServer({ key: certs.leafKey, cert: certs.leafCert }, (_req, res) => sendRepeated(res, mebibyte, mebibytes * mebibyte.length));
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  t.after(() => origin.close());
  const originPort = (origin.address() as AddressInfo).port;
  const { dir, certPath } = await testGetawayCa();
  const proxy = await startGcTracedCli(t, '--trace-gc', ['--mitm', '--ca-dir', dir, '--insecure-upstream-tls']);
  const url = `https://localhost:${originPort}/`;
  const fetchThrough = (limitRate: string): Promise<ProcessResult> =>
    curl(['-s', '-x', `http://127.0.0.1:${proxy.port}`, '--cacert', certPath, '--limit-rate', limitRate, '-o', '/dev/null', '-w', '%{http_code} %{size_download}', url], 30_000);
  assert.equal((await fetchThrough('1G')).stdout, `200 ${mebibytes * mebibyte.length}`); // warm-up
  const before = proxy.gcLines.length;
  // curl reads at a steady 100 MB/s, below what the proxy relays, so the proxy's writes to it back up and the exchange
  // keeps telling the TLS origin connection to wait; the records Node's TLS layer decrypted already then wait in the
  // connection. Each held in a fresh Buffer, they were memory outside V8's heap at the pace of the download, and V8
  // answered every 64 MB or so of it with a full mark-compact ("external memory pressure"): 4 to 5 mark-compacts
  // in three 64 MiB downloads, 12 to 18 in 4 s of them at full speed.
  const result = await fetchThrough('100M');
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last GC lines in the pipe
  assert.equal(result.stdout, `200 ${mebibytes * mebibyte.length}`);
  const during = proxy.gcLines.slice(before);
  const markCompacts = during.filter((line) => line.includes('Mark-Compact'));
  t.diagnostic(`${during.length} collections, ${markCompacts.length} mark-compacts`);
  assert.deepEqual(during.filter((line) => line.includes('external memory pressure')), []);
  assert.ok(markCompacts.length <= 1, markCompacts.join('\n'));
});
