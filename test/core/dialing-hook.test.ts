import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProxyError, type Addon, type DialAddress, type Flow } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startCountingOrigin } from '../helpers/recording-origin.js';
import { startOrigin, startProxy } from '../helpers/servers.js';

const isLoopback = (ip: string): boolean => ip.startsWith('127.') || ip === '::1' || ip === '::ffff:127.0.0.1';

/** Refuses loopback addresses unless the client asked with `X-Allowed: yes`; records what it was asked. */
function loopbackGuard(): { addon: Addon; seen: Array<DialAddress & { kind: Flow['kind'] }> } {
  const seen: Array<DialAddress & { kind: Flow['kind'] }> = [];
  const addon: Addon = {
    name: 'loopback-guard',
    dialing(flow, address) {
      seen.push({ ...address, kind: flow.kind });
      const allowed = flow.clientRequest.headers.get('x-allowed') === 'yes';
      if (isLoopback(address.ip) && !allowed) throw new ProxyError('destination_ip_prohibited', `${address.ip} is loopback`);
    },
  };
  return { addon, seen };
}

test('dialing sees the address a name resolved to: a refusal is 403 destination_ip_prohibited and nothing is dialled', async (t) => {
  const origin = await startCountingOrigin(t);
  const guard = loopbackGuard();
  const { url } = await startProxy(t, { addons: [guard.addon] });
  const result = await curl(['-s', '-i', '-x', url, `http://localhost:${origin.port}/`]);
  assert.match(result.stdout, /^HTTP\/1\.1 403 /);
  assert.match(result.stdout, /Proxy-Status: getaway; error=destination_ip_prohibited/i);
  assert.equal(origin.connections(), 0);
  assert.ok(guard.seen.length >= 1);
  assert.equal(guard.seen[0]!.host, 'localhost');
  assert.ok(isLoopback(guard.seen[0]!.ip), guard.seen[0]!.ip);
  assert.equal(guard.seen[0]!.port, origin.port);
});

test('a pooled connection opened for an allowed flow is checked again for the next flow that would reuse it', async (t) => {
  const requests: string[] = [];
  const origin = await startOrigin(t, (req, res) => {
    requests.push(`${req.method} ${req.url} on ${req.socket.remotePort}`);
    res.end('ok');
  });
  const guard = loopbackGuard();
  const { url } = await startProxy(t, { addons: [guard.addon] });
  // One curl, two URLs: the second request comes on the same client connection, and getaway would reuse its pooled
  // connection to the origin for it. A name, not a literal: no DNS lookup happens for the second request.
  const target = `http://localhost:${origin.port}`;
  const result = await curl(['-s', '-x', url, '-H', 'X-Allowed: yes', `${target}/first`, '--next', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, `${target}/second`]);
  assert.equal(result.stdout, 'ok403');
  assert.equal(requests.length, 1, requests.join('\n'));
  assert.match(requests[0]!, /^GET \/first /);
  const last = guard.seen.at(-1)!;
  assert.equal(last.ip, '127.0.0.1', 'the second flow was checked against the pooled connection\'s peer');
  assert.equal(last.host, 'localhost');
});

test('CONNECT: the dialled address is checked before the tunnel opens', async (t) => {
  const origin = await startCountingOrigin(t);
  const guard = loopbackGuard();
  const { port } = await startProxy(t, { addons: [guard.addon] });
  const client = await rawConnect(port);
  client.socket.write(`CONNECT localhost:${origin.port} HTTP/1.1\r\nHost: localhost:${origin.port}\r\n\r\n`);
  const answer = (await client.untilEnd()).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 403 /);
  assert.match(answer, /error=destination_ip_prohibited/);
  assert.equal(origin.connections(), 0);
  assert.equal(guard.seen[0]!.kind, 'tunnel');
});

test('an upgrade request is checked like any other', async (t) => {
  const origin = await startCountingOrigin(t);
  const guard = loopbackGuard();
  const { port } = await startProxy(t, { addons: [guard.addon] });
  const client = await rawConnect(port);
  client.socket.write(
    `GET http://127.0.0.1:${origin.port}/ws HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
  );
  const answer = (await client.untilEnd()).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 403 /);
  assert.equal(origin.connections(), 0);
  assert.equal(guard.seen[0]!.kind, 'http');
});

test('a dialing hook that throws something else, or returns a promise, fails closed with 500 and dials nothing', async (t) => {
  const origin = await startCountingOrigin(t);
  const broken: Addon = {
    name: 'broken',
    dialing(flow) {
      if (flow.kind === 'http' && flow.request.path === '/async') return Promise.resolve() as unknown as void;
      throw new Error('rules file unreadable');
    },
  };
  const { url } = await startProxy(t, { addons: [broken] });
  for (const path of ['/throws', '/async']) {
    const result = await curl(['-s', '-i', '-x', url, `http://localhost:${origin.port}${path}`]);
    assert.match(result.stdout, /^HTTP\/1\.1 500 /, path);
    assert.match(result.stdout, /error=proxy_internal_error/, path);
  }
  assert.equal(origin.connections(), 0);
});
