/**
 * The safe defaults beyond loopback: client allow-list before parsing, CONNECT ports, internal destinations by the
 * address actually dialled (spellings, names, a resolver the test controls), and what loopback keeps open.
 */
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { test } from 'node:test';
import { curl, rawConnect } from '../helpers/clients.js';
import { startCountingOrigin } from '../helpers/recording-origin.js';
import { startOrigin, startProxy } from '../helpers/servers.js';

/** A proxy "on the network": bound to every address, reached by the tests over 127.0.0.1. */
const exposed = { host: '0.0.0.0', allowClients: ['127.0.0.1/32'] };

test('allowClients: a client outside the list is closed before a byte is parsed, and nothing is dialled', async (t) => {
  const origin = await startCountingOrigin(t);
  const { port, proxy } = await startProxy(t, { host: '0.0.0.0', allowClients: ['10.0.0.0/8', '::1'] });
  const client = await rawConnect(port);
  client.socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  const answer = await client.untilEnd();
  assert.equal(answer.length, 0, 'no response at all, not even an error');
  assert.equal(origin.connections(), 0);
  assert.equal(proxy.stats().flowsCompleted, 0, 'no flow was created');
});

test('beyond loopback, CONNECT reaches port 443 only: another port is 403 http_request_denied, nothing dialled', async (t) => {
  const origin = await startCountingOrigin(t);
  const { port } = await startProxy(t, { ...exposed, allowPrivate: true });
  const client = await rawConnect(port);
  client.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
  const answer = (await client.untilEnd()).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 403 /);
  assert.match(answer, /Proxy-Status: getaway; error=http_request_denied; details="CONNECT to port \d+ is not allowed/);
  assert.equal(origin.connections(), 0);
});

test('connectPorts lists and ranges open the ports they name, and only those', async (t) => {
  const origin = await startCountingOrigin(t);
  const { port } = await startProxy(t, { ...exposed, allowPrivate: true, connectPorts: `443,${origin.port - 1}-${origin.port}` });
  const open = await rawConnect(port);
  open.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match(await open.waitFor('\r\n\r\n'), /^HTTP\/1\.1 200 /);
  open.socket.destroy();
  const closed = await rawConnect(port);
  closed.socket.write(`CONNECT 127.0.0.1:${origin.port + 1} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match((await closed.untilEnd()).toString('latin1'), /^HTTP\/1\.1 403 /);
});

test('beyond loopback, loopback destinations are refused in every spelling, by the address dialled', async (t) => {
  const origin = await startCountingOrigin(t);
  const { url, port } = await startProxy(t, { ...exposed, connectPorts: '*' });
  // Raw requests: curl would normalise some of these spellings itself, and the proxy must not rely on clients doing so.
  for (const host of ['127.0.0.1', '0x7f.1', '2130706433', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', 'localhost', '0.0.0.0', '127.1', 'LocalHost']) {
    const client = await rawConnect(port);
    client.socket.write(`GET http://${host}:${origin.port}/ HTTP/1.1\r\nHost: ${host}:${origin.port}\r\nConnection: close\r\n\r\n`);
    const answer = (await client.untilEnd()).toString('latin1');
    assert.match(answer, /^HTTP\/1\.1 403 /, host);
    assert.match(answer, /error=destination_ip_prohibited/, host);
  }
  const tunnel = await curl(['-s', '-p', '-x', url, `http://localhost:${origin.port}/`, '-o', '/dev/null', '-w', '%{http_connect}']);
  assert.equal(tunnel.stdout, '403');
  assert.equal(origin.connections(), 0, 'nothing was dialled for any of them');
});

test('allowPrivate and allowDestinations open loopback again beyond loopback; metadata needs allowDestinations', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const open = await startProxy(t, { ...exposed, allowPrivate: true });
  assert.equal((await curl(['-s', '-x', open.url, `${origin.url}/`])).stdout, 'ok');
  const listed = await startProxy(t, { ...exposed, allowDestinations: ['127.0.0.0/8'] });
  assert.equal((await curl(['-s', '-x', listed.url, `${origin.url}/`])).stdout, 'ok');
  const metadata = await curl(['-s', '-i', '-x', open.url, 'http://169.254.169.254/latest/meta-data/']);
  assert.match(metadata.stdout, /^HTTP\/1\.1 403 /);
  assert.match(metadata.stdout, /error=destination_ip_prohibited; details="169\.254\.169\.254:80 is a link-local or cloud metadata address"/);
});

test('on loopback nothing changes for local programs but metadata: any CONNECT port and loopback origins work', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { url } = await startProxy(t);
  assert.equal((await curl(['-s', '-x', url, `${origin.url}/`])).stdout, 'ok');
  assert.equal((await curl(['-s', '-p', '-x', url, `${origin.url}/`])).stdout, 'ok');
  for (const target of ['http://169.254.169.254/', 'http://[fd00:ec2::254]/', 'http://100.100.100.200/', 'http://[64:ff9b::a9fe:a9fe]/']) {
    const result = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, target]);
    assert.equal(result.stdout, '403', target);
  }
});

test('DNS rebinding: a name whose answer changes between two requests is checked on each dial, with the resolver the test controls', async (t) => {
  const allowed = await startOrigin(t, (_req, res) => {
    res.setHeader('Connection', 'close');
    res.end('first');
  });
  const answers = ['127.0.0.1', '127.0.0.2'];
  const asked: string[] = [];
  const resolver = ((hostname: string, options: { all?: boolean }, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    asked.push(hostname);
    const address = answers[Math.min(asked.length - 1, answers.length - 1)]!;
    if (options.all) callback(null, [{ address, family: 4 }]);
    else callback(null, address, 4);
  }) as unknown as LookupFunction;
  const { url } = await startProxy(t, { ...exposed, allowDestinations: ['127.0.0.1/32'], resolver });
  assert.equal((await curl(['-s', '-x', url, `http://rebind.example:${allowed.port}/`])).stdout, 'first');
  const again = await curl(['-s', '-i', '-x', url, `http://rebind.example:${allowed.port}/`]);
  assert.match(again.stdout, /^HTTP\/1\.1 403 /);
  assert.match(again.stdout, /127\.0\.0\.2:\d+ is a private or loopback address \(rebind\.example resolved to it\)/);
  assert.deepEqual(asked, ['rebind.example', 'rebind.example']);
});

test('a name that resolves to one public and one private address is refused, whichever the connection would use', async (t) => {
  const resolver = ((_hostname: string, options: { all?: boolean }, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    const list = [{ address: '192.0.2.10', family: 4 }, { address: '10.1.2.3', family: 4 }];
    if (options.all) callback(null, list);
    else callback(null, list[0]!.address, 4);
  }) as unknown as LookupFunction;
  const { url } = await startProxy(t, { ...exposed, resolver });
  const result = await curl(['-s', '-i', '-x', url, 'http://mixed.example/']);
  assert.match(result.stdout, /^HTTP\/1\.1 403 /);
  assert.match(result.stdout, /10\.1\.2\.3:80 is a private or loopback address/);
});
