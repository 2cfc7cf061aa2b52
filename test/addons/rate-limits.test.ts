import assert from 'node:assert/strict';
import { test } from 'node:test';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, waitFor } from '../helpers/servers.js';

const status = async (args: string[]): Promise<string> => (await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args])).stdout;

test('per-client rate: a token bucket answers 429 with Retry-After when empty, and refills', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { url } = await startProxy(t, { rateLimits: { perClient: { rate: 2, burst: 2 } } });
  assert.equal(await status(['-x', url, origin.url]), '200');
  assert.equal(await status(['-x', url, origin.url]), '200');
  const limited = await curl(['-s', '-i', '-x', url, origin.url]);
  assert.match(limited.stdout, /^HTTP\/1\.1 429 /);
  assert.match(limited.stdout, /\r\nRetry-After: 1\r\n/);
  assert.match(limited.stdout, /error=http_request_denied; details="client 127\.0\.0\.1 is over 2 requests a second"/);
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal(await status(['-x', url, origin.url]), '200', 'a token came back after half a second');
});

test('per-client concurrency: requests and open tunnels hold a slot; past the cap, 503 with Retry-After', async (t) => {
  let release: (() => void) | undefined;
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/slow') release = () => res.end('slow');
    else res.end('fast');
  });
  const { url, port } = await startProxy(t, { rateLimits: { perClient: { concurrent: 1 } } });
  const slow = curl(['-s', '-x', url, `${origin.url}/slow`]);
  await waitFor(() => release !== undefined, 3000, 'the slow request to reach the origin');
  const refused = await curl(['-s', '-i', '-x', url, `${origin.url}/fast`]);
  assert.match(refused.stdout, /^HTTP\/1\.1 503 [^]*error=connection_limit_reached; details="client 127\.0\.0\.1 has 1 requests in progress already"/);
  assert.match(refused.stdout, /\r\nRetry-After: 1\r\n/);
  release!();
  assert.equal((await slow).stdout, 'slow');
  assert.equal(await status(['-x', url, `${origin.url}/fast`]), '200', 'the slot was given back');

  const tunnel = await rawConnect(port);
  tunnel.socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await tunnel.waitFor('200 Connection Established');
  assert.equal(await status(['-x', url, `${origin.url}/fast`]), '503', 'an open tunnel holds the slot');
  tunnel.socket.destroy();
  let after = '';
  for (let i = 0; i < 20 && after !== '200'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    after = await status(['-x', url, `${origin.url}/fast`]);
  }
  assert.equal(after, '200', 'closing the tunnel gave the slot back');
});

test('per-user rate: users behind one address have buckets of their own', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { url } = await startProxy(t, { auth: { users: ['alice:a', 'bob:b'] }, rateLimits: { perUser: { rate: 1, burst: 1 } } });
  assert.equal(await status(['-x', url, '--proxy-user', 'alice:a', origin.url]), '200');
  assert.equal(await status(['-x', url, '--proxy-user', 'alice:a', origin.url]), '429');
  assert.equal(await status(['-x', url, '--proxy-user', 'bob:b', origin.url]), '200');
});
