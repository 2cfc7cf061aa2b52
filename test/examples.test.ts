/** Every file in examples/ runs as shipped, and does what its comment says. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { curl, rawConnect } from './helpers/clients.js';
import { startOrigin } from './helpers/servers.js';

/** What the last example printed, for examples that report more than their URL. */
let lastOutput = '';
/** The last example's process, for examples whose shutdown is part of what they show. */
let lastChild: ReturnType<typeof spawn> | undefined;

async function runExample(t: TestContext, name: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const path = fileURLToPath(new URL(`../examples/${name}.js`, import.meta.url));
  const child = spawn(process.execPath, [path], { env: { ...process.env, PORT: '0', ...env }, stdio: 'pipe' });
  lastChild = child;
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${output}`)), 10_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const url = /"url":"(http:\/\/[^"]+)"/.exec(output)?.[1];
      lastOutput = output;
      if (url !== undefined) {
        clearTimeout(timer);
        resolve(url);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  });
}

test('examples/block-hosts: blocked hosts get 403 (HTTP and CONNECT), others pass', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('allowed'));
  const url = await runExample(t, 'block-hosts');
  const blocked = await curl(['-x', url, '-i', 'http://ads.example/banner']);
  assert.match(blocked.stdout, /^HTTP\/1\.1 403 Forbidden/);
  assert.match(blocked.stdout, /blocked by getaway/);
  const port = Number(new URL(url).port);
  const tunnel = await rawConnect(port);
  tunnel.socket.write('CONNECT www.tracker.example:443 HTTP/1.1\r\nHost: www.tracker.example:443\r\n\r\n');
  assert.match((await tunnel.untilEnd()).toString(), /^HTTP\/1\.1 403 Forbidden/);
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'allowed');
});

test('examples/stamp-requests: the origin sees the tag, the client sees the stamp', async (t) => {
  let tag: string | undefined;
  const origin = await startOrigin(t, (req, res) => {
    tag = req.headers['x-getaway-tag'] as string;
    res.end('ok');
  });
  const url = await runExample(t, 'stamp-requests');
  const result = await curl(['-x', url, '-i', origin.url]);
  assert.equal(tag, 'example');
  assert.match(result.stdout, /X-Getaway-Seen: GET 127\.0\.0\.1\r\n/);
});

test('examples/metrics: a request through the proxy shows up on the metrics endpoint', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('counted'));
  const url = await runExample(t, 'metrics', { ADMIN_PORT: '0' });
  const metricsUrl = /"metrics":"(http:\/\/[^"]+)"/.exec(lastOutput)?.[1];
  assert.ok(metricsUrl !== undefined, lastOutput);
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'counted');
  const text = await (await fetch(metricsUrl)).text();
  assert.match(text, /^getaway_flows_total\{kind="http",outcome="complete"\} 1$/m);
});

test('examples/hash-bodies: the logged sha256 of a 32 MiB download and of an upload match the bytes that passed', async (t) => {
  const download = Buffer.alloc(32 * 1024 * 1024);
  for (let i = 0; i < download.length; i += 4) download.writeUInt32LE((i * 2654435761) >>> 0, i);
  const origin = await startOrigin(t, (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/upload') return void res.end('stored');
      for (let i = 0; i < download.length; i += 1 << 20) res.write(download.subarray(i, i + (1 << 20)));
      res.end();
    });
  });
  const url = await runExample(t, 'hash-bodies');
  const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');
  const fetched = await curl(['-x', url, '-s', '-o', '/dev/null', '-w', '%{size_download}', `${origin.url}/big`], 30_000);
  assert.equal(fetched.stdout, String(download.length));
  await curl(['-x', url, '-s', '--data-binary', 'upload body', `${origin.url}/upload`]);
  const lines = (): Array<Record<string, unknown>> => lastOutput.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const deadline = Date.now() + 5000;
  while (lines().filter((l) => l['msg'] === 'hashed').length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const hashed = lines().filter((l) => l['msg'] === 'hashed');
  const big = hashed.find((l) => String(l['url']).endsWith('/big'));
  const upload = hashed.find((l) => String(l['url']).endsWith('/upload'));
  assert.equal(big?.['sha256'], sha256(download));
  assert.equal(big?.['bytes'], download.length);
  assert.equal(upload?.['requestSha256'], sha256('upload body'));
  assert.equal(upload?.['sha256'], sha256('stored'));
});

test('examples/answer-from-stream: a 64 MiB answer comes from the stream with its Content-Length; other hosts are proxied', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('proxied'));
  const url = await runExample(t, 'answer-from-stream');
  const size = 64 * 1024 * 1024;
  const file = join(mkdtempSync(join(tmpdir(), 'getaway-example-')), 'generated.bin');
  const result = await curl(['-x', url, '-s', '-D', '-', '-o', file, `http://generated.example/${size}`], 30_000);
  assert.match(result.stdout, new RegExp(`\\r\\nContent-Length: ${size}\\r\\n`, 'i'));
  assert.match(result.stdout, /\r\nX-Answered-By: answer-from-stream\r\n/i);
  assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), createHash('sha256').update(Buffer.alloc(size, 'getaway ')).digest('hex'));
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'proxied');
});

test('examples/warc-archive: captures land in WARC files, the repeat as a revisit, closed cleanly on SIGTERM', async (t) => {
  const { readWarcDir } = await import('./helpers/warc-files.js');
  const origin = await startOrigin(t, (_req, res) => res.end('archived page'));
  const dir = mkdtempSync(join(tmpdir(), 'getaway-example-warc-'));
  const { rm } = await import('node:fs/promises');
  const url = await runExample(t, 'warc-archive', { WARC_DIR: dir });
  for (let i = 0; i < 2; i += 1) assert.equal((await curl(['-s', '-x', url, `${origin.url}/page`])).stdout, 'archived page');
  t.after(() => rm(dir, { recursive: true, force: true }));
  lastChild!.kill('SIGTERM');
  const deadline = Date.now() + 5000;
  while (!lastOutput.includes('archive closed') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.match(lastOutput, /archive closed/);
  const records = await readWarcDir(dir);
  assert.deepEqual(records.map((r) => r.type), ['warcinfo', 'response', 'request', 'revisit', 'request']);
  assert.match(records[0]!.payload!.toString(), /^operator: examples\/warc-archive$/m);
});
