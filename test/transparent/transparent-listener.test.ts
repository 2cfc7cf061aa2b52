/**
 * The transparent listener on loopback, without redirect rules: what it does with connections nothing redirected,
 * how redirected bytes are told apart, its options, and how it fails where it cannot run.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { createProxy, OptionsError, resolveProxyOptions, TransparentListener } from '../../src/index.js';
import { classifyFirstBytes } from '../../src/transparent/redirected-connection.js';
import { loadConfigFile } from '../../src/config/config-file.js';
import { rawConnect } from '../helpers/clients.js';
import { runCli, CLI_PATH } from '../helpers/cli-process.js';
import { startProxy, waitFor } from '../helpers/servers.js';
import { writeFile } from 'node:fs/promises';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A real ClientHello, as Node's TLS client sends it for `servername`. */
async function clientHello(servername: string): Promise<Buffer> {
  const server = createServer();
  const hello = new Promise<Buffer>((resolve) => server.once('connection', (socket) => socket.once('data', (chunk: Buffer) => (resolve(chunk), socket.destroy()))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', servername, rejectUnauthorized: false });
  client.on('error', () => undefined);
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}

test('first bytes: an HTTP/1.x request line, a ClientHello with its SNI, and anything else', async () => {
  assert.deepEqual(classifyFirstBytes(Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n\r\n')), { kind: 'http' });
  assert.deepEqual(classifyFirstBytes(Buffer.from('OPTIONS * HTTP/1.0\n')), { kind: 'http' });
  assert.equal(classifyFirstBytes(Buffer.from('GET /still-coming')), 'incomplete');
  assert.equal(classifyFirstBytes(Buffer.from('POS')), 'incomplete');
  assert.deepEqual(classifyFirstBytes(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), { kind: 'other' }, 'h2c prior knowledge is tunnelled');
  assert.deepEqual(classifyFirstBytes(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')), { kind: 'other' });
  assert.deepEqual(classifyFirstBytes(Buffer.from('EHLO client.example\r\n')), { kind: 'other' });
  assert.deepEqual(classifyFirstBytes(Buffer.from([0x00, 0x01, 0x02])), { kind: 'other' });
  assert.deepEqual(classifyFirstBytes(Buffer.from(`GET /${'a'.repeat(20_000)}`)), { kind: 'other' }, 'a request line past 16 KiB is not waited for');
  const hello = await clientHello('origin.example');
  assert.deepEqual(classifyFirstBytes(hello), { kind: 'tls', serverName: 'origin.example' });
  assert.equal(classifyFirstBytes(hello.subarray(0, 20)), 'incomplete');
});

test('a connection nothing redirected is closed unread, logged, and the listener keeps serving', async (t) => {
  const refused: string[] = [];
  const listener = new TransparentListener({ host: '127.0.0.1', port: 0, mode: 'tproxy', onRefused: (reason) => refused.push(reason) });
  // tproxy mode needs CAP_NET_ADMIN for IP_TRANSPARENT; these tests run as root (CI does).
  const { proxy } = await startProxy(t, { listeners: [listener] });
  const port = listener.address()!.port;
  for (let i = 0; i < 3; i++) {
    const connection = await rawConnect(port);
    connection.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.equal((await connection.untilEnd()).length, 0, 'closed without an answer');
  }
  await waitFor(() => refused.length === 3);
  assert.match(refused[0]!, /connected to the transparent port 127\.0\.0\.1:\d+ directly/);
  assert.equal(proxy.activeFlows, 0);
  assert.equal(proxy.stats().flowsCompleted, 0, 'no flow was started for them');
});

test('redirect mode: a connection with no conntrack entry is closed with the reason', async (t) => {
  const refused: string[] = [];
  const proxy = createProxy({ explicit: false, transparent: { host: '127.0.0.1', port: 0, mode: 'redirect' } });
  // The option's listener reports refusals to the proxy's log; a second one here collects them.
  const mine = new TransparentListener({ host: '127.0.0.1', port: 0, mode: 'redirect', onRefused: (reason) => refused.push(reason) });
  const withMine = createProxy({ explicit: false, listeners: [mine] });
  await proxy.listen();
  await withMine.listen();
  t.after(() => Promise.all([proxy.close(), withMine.close()]));
  const [bound] = proxy.listening();
  assert.equal(bound?.listener, 'transparent');
  assert.deepEqual(proxy.address(), { address: bound!.address, family: bound!.family, port: bound!.port }, 'address() is the transparent one when the explicit port is off');
  const connection = await rawConnect(mine.address()!.port);
  assert.equal((await connection.untilEnd()).length, 0);
  await waitFor(() => refused.length === 1);
  // Where conntrack tracks loopback the destination is the port itself; where it does not, there is none.
  assert.match(refused[0]!, /directly|no original destination/);
});

test('options: transparent and explicit are checked, every problem named', () => {
  assert.throws(
    () => resolveProxyOptions({ transparent: { host: 'example.com', port: 70_000, mode: 'nat' as 'tproxy', extra: 1 } as never }),
    (err: unknown) => {
      assert.ok(err instanceof OptionsError);
      const text = err.problems.join('\n');
      assert.match(text, /transparent\.host: expected an IP address/);
      assert.match(text, /transparent\.port: expected an integer from 0 to 65535/);
      assert.match(text, /transparent\.mode: expected "tproxy" or "redirect"/);
      assert.match(text, /transparent\.extra: unknown option/);
      return true;
    },
  );
  assert.throws(() => resolveProxyOptions({ explicit: false }), /explicit: false leaves nothing to listen on/);
  const resolved = resolveProxyOptions({ transparent: { port: 3129 } });
  assert.deepEqual(resolved.transparent, { host: '127.0.0.1', port: 3129, mode: 'redirect' });
  assert.equal(resolved.explicit, true);
});

test('config file: `transparent` as a mapping or an address, `listen: none`', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-transparent-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'getaway.yaml');
  await writeFile(file, 'listen: none\ntransparent:\n  listen: 0.0.0.0:3129\n  mode: tproxy\nallowClients: [10.0.0.0/8]\n');
  const settings = await loadConfigFile(file);
  assert.equal(settings.explicit, false);
  assert.deepEqual(settings.transparent, { host: '0.0.0.0', port: 3129, mode: 'tproxy' });
  await writeFile(file, 'transparent: "[::]:3129"\n');
  assert.deepEqual((await loadConfigFile(file)).transparent, { host: '::', port: 3129, mode: 'redirect' });
  await writeFile(file, 'transparent:\n  listen: 3129\n  mode: nat\n  port: 1\n');
  await assert.rejects(loadConfigFile(file), (err: unknown) => {
    const text = (err as OptionsError).problems.join('\n');
    assert.match(text, /transparent: unknown key "port"/);
    assert.match(text, /transparent: mode: expected "tproxy" or "redirect"/);
    return true;
  });
});

test('CLI: --transparent-mode without --transparent, and a bad mode, exit 2 with the reason', async () => {
  const lone = await runCli(['serve', '--transparent-mode', 'tproxy']);
  assert.equal(lone.code, 2);
  assert.match(lone.stderr, /--transparent-mode: needs --transparent HOST:PORT/);
  const bad = await runCli(['serve', '--transparent', '127.0.0.1:0', '--transparent-mode', 'nat']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--transparent-mode.*Allowed choices are redirect, tproxy/);
});

test('where the native module was not built, --transparent stops the start saying why, and the explicit proxy still runs', async (t) => {
  // A copy of the package without build/: what a machine without a compiler ends up with after npm install.
  const copy = mkdtempSync(join(tmpdir(), 'getaway-no-native-'));
  t.after(() => rmSync(copy, { recursive: true, force: true }));
  cpSync(join(ROOT, 'dist'), join(copy, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  const cli = join(copy, 'dist/src/cli/main.js');
  const failed = spawnSync(process.execPath, [cli, 'serve', '--listen', '127.0.0.1:0', '--transparent', '127.0.0.1:0'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(failed.status, 2, failed.stderr);
  assert.match(failed.stderr, /cannot start the transparent listener: transparent mode needs the native socket options module, which was not built .*npm rebuild getaway/);
  assert.doesNotMatch(failed.stderr, /at .*\.js:\d+/, 'a message, not a stack trace');
  // The same copy serves as an explicit proxy.
  const help = spawnSync(process.execPath, [cli, 'serve', '--help'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(help.status, 0);
  // Tunnels too: without the kernel splice module they are copied in JavaScript.
  const started = spawnSync(process.execPath, ['-e', `
    import(${JSON.stringify(join(copy, 'dist/src/index.js'))}).then(async ({ createProxy }) => {
      const net = await import('node:net');
      const echo = net.createServer((socket) => socket.pipe(socket));
      await new Promise((resolve) => echo.listen(0, '127.0.0.1', resolve));
      const proxy = createProxy({ port: 0 });
      await proxy.listen();
      const client = net.connect(proxy.address().port, '127.0.0.1');
      client.write('CONNECT 127.0.0.1:' + echo.address().port + ' HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');
      let text = '';
      client.on('data', (chunk) => {
        text += chunk;
        if (text.endsWith('\\r\\n\\r\\n')) client.write('echoed');
        if (text.endsWith('echoed')) {
          client.destroy();
          console.log('tunnel ok, in kernel: ' + proxy.stats().tunnelsInKernel);
          proxy.close().then(() => { echo.close(); console.log('explicit ok'); });
        }
      });
    });`], { encoding: 'utf8', timeout: 10_000 });
  assert.match(started.stdout, /tunnel ok, in kernel: 0\nexplicit ok/, started.stderr);
  // And the install step itself never fails: skipped here, with a one-line warning.
  const install = spawnSync(process.execPath, [join(ROOT, 'scripts/build-native.js')], { encoding: 'utf8', env: { ...process.env, GETAWAY_SKIP_NATIVE: '1' } });
  assert.equal(install.status, 0);
  assert.match(install.stderr, /native modules not built \(GETAWAY_SKIP_NATIVE=1\): no transparent mode, and tunnels copy in JavaScript; everything else works/);
});

test('tproxy mode without CAP_NET_ADMIN stops the start naming the capability', async () => {
  // Run as nobody, who lacks it (these tests run as root, so root can drop to nobody).
  let nobody: boolean;
  try {
    execFileSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'true'], { stdio: 'ignore' });
    nobody = true;
  } catch {
    nobody = false;
  }
  assert.ok(nobody, 'setpriv (util-linux) can run a command as nobody here');
  const result = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI_PATH, 'serve', '--listen', 'none', '--transparent', '127.0.0.1:0', '--transparent-mode', 'tproxy'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /cannot set IP_TRANSPARENT for tproxy mode: .*needs CAP_NET_ADMIN/);
});
