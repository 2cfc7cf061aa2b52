import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { curl, rawConnect } from '../helpers/clients.js';
import { runCli, startCliProxy } from '../helpers/cli-process.js';
import { startOrigin, waitFor } from '../helpers/servers.js';

test('getaway serve: prints where it listens, proxies, logs one JSON line per flow, exits 0 on SIGTERM', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('hello'));
  const cli = await startCliProxy(t);
  assert.match(cli.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const result = await curl(['-x', cli.url, `${origin.url}/logged`]);
  assert.equal(result.stdout, 'hello', result.stderr);
  await waitFor(() => cli.lines.some((line) => line['target'] === `${origin.url}/logged`), 5000, 'the flow log line');
  const line = cli.lines.find((l) => l['target'] === `${origin.url}/logged`)!;
  assert.equal(line['method'], 'GET');
  assert.equal(line['status'], 200);
  assert.equal(line['bytesDown'], 5);
  assert.equal(typeof line['flowId'], 'string');
  assert.equal(typeof line['durationMs'], 'number');
  assert.match(String(line['client']), /^127\.0\.0\.1:\d+$/);
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});

test('SIGTERM lets an in-flight request finish, refuses new connections, then exits 0', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.write('start-');
    setTimeout(() => res.end('end'), 400);
  });
  const cli = await startCliProxy(t);
  const conn = await rawConnect(cli.port);
  conn.socket.write(`GET ${origin.url}/slow HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.waitFor('start-');
  cli.child.kill('SIGTERM');
  await waitFor(() => cli.lines.some((line) => line['msg'] === 'shutting down: finishing in-flight requests'), 5000, 'shutdown to begin');
  const refused = await curl(['-x', cli.url, `${origin.url}/new`]);
  assert.equal(refused.code, 7, 'new connections are refused once shutdown began');
  const text = await conn.waitFor('\r\n0\r\n\r\n');
  assert.match(text, /\r\n6\r\nstart-\r\n3\r\nend\r\n0\r\n\r\n$/);
  await conn.untilEnd();
  assert.equal(await cli.exited, 0);
});

test('a YAML config file sets the listener and log level; flags override it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-cli-'));
  const config = join(dir, 'getaway.yaml');
  writeFileSync(config, 'listen: 127.0.0.1:0\nlogLevel: debug\nconnectTimeoutMs: 2000\n');
  const cli = await startCliProxy(t, ['--config', config, '--log-level', 'info']);
  const origin = await startOrigin(t, (_req, res) => res.end('configured'));
  assert.equal((await curl(['-x', cli.url, origin.url])).stdout, 'configured');
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
  assert.ok(!cli.lines.some((line) => line['level'] === 20), '--log-level info overrides the file\'s debug');
});

test('a bad config file stops the start with exit 2 and a message naming each bad key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-cli-'));
  const config = join(dir, 'bad.json');
  writeFileSync(config, JSON.stringify({ listen: 'nowhere', idleTimeoutMs: 'long' }));
  const result = await runCli(['serve', '--config', config]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /bad\.json: listen: expected HOST:PORT/);
  assert.match(result.stderr, /bad\.json: idleTimeoutMs: expected a positive integer number of milliseconds, got "long"/);
});

test('bad flags are refused with a clear message', async () => {
  const listen = await runCli(['serve', '--listen', 'nope']);
  assert.equal(listen.code, 2);
  assert.match(listen.stderr, /--listen: expected HOST:PORT/);
  const timeout = await runCli(['serve', '--connect-timeout', 'soon']);
  assert.notEqual(timeout.code, 0);
  assert.match(timeout.stderr, /--connect-timeout expects a positive number of milliseconds/);
});

test('an unusable upstream in the environment stops the start with exit 2, its password never shown', async () => {
  const env = { ...process.env, ALL_PROXY: 'socks4://alice:s3cret-pw@proxy.example:1080' };
  const result = await runCli(['serve', '--listen', '127.0.0.1:0', '--upstream', 'env'], env);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /upstreamEnv: ALL_PROXY: "socks4:\/\/\*\*\*@proxy\.example:1080": unsupported upstream scheme "socks4"/);
  assert.doesNotMatch(result.stderr + result.stdout, /s3cret-pw|alice/);
});

test('a port already in use is reported, not thrown as a stack trace', async (t) => {
  const cli = await startCliProxy(t);
  const result = await runCli(['serve', '--listen', `127.0.0.1:${cli.port}`]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^getaway: cannot listen: .*EADDRINUSE/);
  cli.child.kill('SIGTERM');
  await cli.exited;
});

test('a config file can turn WARC archiving on, and its warc keys are checked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-warc-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, `warc:\n  dir: ${dir}/w\n  gzipLevel: 12\n  rotate: 5\n`);
  const result = await runCli(['serve', '--config', bad]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /bad\.yaml: warc: unknown key "rotate"/);
  assert.match(result.stderr, /bad\.yaml: warc\.gzipLevel: 1 to 9/);
  const good = join(dir, 'good.yaml');
  writeFileSync(good, `listen: 127.0.0.1:0\nwarc:\n  dir: ${dir}/w\n  prefix: crawl\n  info:\n    operator: ops@example.org\n`);
  const origin = await startOrigin(t, (_req, res) => res.end('from config'));
  const cli = await startCliProxy(t, ['--config', good]);
  assert.equal((await curl(['-s', '-x', cli.url, origin.url])).stdout, 'from config');
  cli.child.kill('SIGTERM');
  await cli.exited;
  const files = readdirSync(join(dir, 'w')).filter((name) => name.endsWith('.warc.gz'));
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^crawl-/);
});
