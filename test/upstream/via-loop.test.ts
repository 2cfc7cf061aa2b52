/**
 * Loops through other hops: getaway's upstream leads back to getaway itself (here through a plain TCP relay, which
 * no address check can see through). The second pass finds this instance's pseudonym in Via and is refused, so
 * the loop ends after one round instead of running until sockets run out.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { curl } from '../helpers/clients.js';
import { startProxy, startTcpServer } from '../helpers/servers.js';

async function startLoop(t: Parameters<typeof startProxy>[0]) {
  let proxyPort = 0;
  let relayed = 0;
  const relay = await startTcpServer(t, (socket) => {
    relayed++;
    const onward = connect({ host: '127.0.0.1', port: proxyPort });
    socket.on('error', () => onward.destroy());
    onward.on('error', () => socket.destroy());
    socket.pipe(onward).pipe(socket);
  });
  const started = await startProxy(t, { upstreams: [`http://127.0.0.1:${relay.port}`] });
  proxyPort = started.port;
  return { started, relayed: () => relayed };
}

test('a plain request that comes back through an upstream chain is refused by its Via: 502 proxy_loop_detected after one round', async (t) => {
  const { started, relayed } = await startLoop(t);
  const result = await curl(['-x', started.url, '-i', 'http://loop.example/']);
  assert.match(result.stdout, /^HTTP\/1\.1 502 /);
  assert.match(result.stdout, /Proxy-Status: getaway; error=proxy_loop_detected; details="this request already passed through this proxy \(Via names getaway-[0-9a-f]{8}\)"/);
  assert.equal(relayed(), 1, 'one round through the relay, not a loop');
});

test('a CONNECT that comes back through an upstream chain is refused by its Via after one round', async (t) => {
  const { started, relayed } = await startLoop(t);
  const result = await curl(['-x', started.url, '-p', '-i', 'https://loop.example/']);
  assert.match(result.stdout + result.stderr, /502/);
  assert.match(result.stdout, /upstream http:\/\/127\.0\.0\.1:\d+ answered CONNECT with 502/);
  assert.equal(relayed(), 1, 'one round through the relay, not a loop');
});

test('Via carries one entry per pass: this instance\'s pseudonym, also on responses', async (t) => {
  const { started } = await startLoop(t);
  const result = await curl(['-x', started.url, '-i', 'http://loop.example/']);
  // The inner pass refused; the outer pass relayed that refusal and added itself to the response's Via.
  const via = /^Via: (.*)$/im.exec(result.stdout)?.[1]?.trim();
  assert.match(via ?? '', /^1\.1 getaway-[0-9a-f]{8}$/);
});
