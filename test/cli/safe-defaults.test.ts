import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { curl, rawConnect } from '../helpers/clients.js';
import { runCli, startCliProxy } from '../helpers/cli-process.js';
import { startOrigin, waitFor } from '../helpers/servers.js';

test('getaway serve beyond loopback with neither --allow-clients nor --auth refuses to start: exit 2, naming the flags', async () => {
  const result = await runCli(['serve', '--listen', '0.0.0.0:0']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /listening on 0\.0\.0\.0 would make this an open proxy/);
  assert.match(result.stderr, /--allow-clients CIDR/);
  assert.match(result.stderr, /--auth user:pass/);
});

test('bad access flags are refused with a message naming them', async () => {
  const ports = await runCli(['serve', '--connect-ports', '443,ssh']);
  assert.equal(ports.code, 2);
  assert.match(ports.stderr, /connectPorts: "ssh" is not a port/);
  const clients = await runCli(['serve', '--listen', '0.0.0.0:0', '--allow-clients', '10.0.0.0/33']);
  assert.equal(clients.code, 2);
  assert.match(clients.stderr, /allowClients: "10\.0\.0\.0\/33" is not an IP address or CIDR range/);
  const file = await runCli(['serve', '--auth-file', '/nonexistent/users.htpasswd']);
  assert.equal(file.code, 2);
  assert.match(file.stderr, /auth\.file: ENOENT: no such file or directory/);
});

test('--allow-clients starts it beyond loopback, locked down: CONNECT to 443 only, no loopback destinations', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const cli = await startCliProxy(t, ['--listen', '0.0.0.0:0', '--allow-clients', '127.0.0.1/32']);
  const url = `http://127.0.0.1:${cli.port}`;
  const plain = await curl(['-s', '-i', '-x', url, `${origin.url}/`]);
  assert.match(plain.stdout, /^HTTP\/1\.1 403 /);
  assert.match(plain.stdout, /error=destination_ip_prohibited/);
  const tunnel = await rawConnect(cli.port);
  tunnel.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match((await tunnel.untilEnd()).toString('latin1'), /^HTTP\/1\.1 403 [^]*error=http_request_denied/);
  const opened = await startCliProxy(t, ['--listen', '0.0.0.0:0', '--allow-clients', '127.0.0.1/32', '--allow-private', '--connect-ports', '*']);
  assert.equal((await curl(['-s', '-p', '-x', `http://127.0.0.1:${opened.port}`, `${origin.url}/`])).stdout, 'ok');
});

test('--auth-file is re-read on SIGHUP', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-auth-'));
  const file = join(dir, 'users');
  execFileSync('htpasswd', ['-c', '-b', '-B', file, 'first', 'one']);
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const cli = await startCliProxy(t, ['--auth-file', file]);
  const code = async (user: string): Promise<string> =>
    (await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', cli.url, '--proxy-user', user, `${origin.url}/`])).stdout;
  assert.equal(await code('first:one'), '200');
  assert.equal(await code('second:two'), '407');
  execFileSync('htpasswd', ['-b', '-B', file, 'second', 'two']);
  cli.child.kill('SIGHUP');
  await waitFor(() => cli.lines.some((line) => line['msg'] === 'reloaded: proxy users re-read'), 5000, 'the reload');
  assert.equal(await code('second:two'), '200');
  // The log line is written as the flow ends, which can be just after curl has its response.
  await waitFor(() => cli.lines.some((line) => line['user'] === 'second'), 5000, 'the flow log naming the user');
  assert.ok(!JSON.stringify(cli.lines).includes('two'), 'no password in the log');
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});
