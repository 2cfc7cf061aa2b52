import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseUpstreamProxy, proxyAuthorization, proxyUserOf } from '../../src/upstream/upstream-proxy.js';

const valid = [
  { input: 'http://proxy.example:3128', id: 'http://proxy.example:3128', protocol: 'http', port: 3128 },
  { input: 'proxy.example:3128', id: 'http://proxy.example:3128', protocol: 'http', port: 3128 },
  { input: 'http://proxy.example', id: 'http://proxy.example:80', protocol: 'http', port: 80 },
  { input: 'https://secure.example', id: 'https://secure.example:443', protocol: 'https', port: 443 },
  { input: 'socks5://127.0.0.1', id: 'socks5://127.0.0.1:1080', protocol: 'socks5', port: 1080 },
  { input: 'SOCKS5H://[::1]:9050', id: 'socks5h://[::1]:9050', protocol: 'socks5h', port: 9050 },
  { input: 'http://us%40r:p%3Ass@proxy.example:8080/', id: 'http://proxy.example:8080', protocol: 'http', port: 8080 },
];
for (const c of valid) {
  test(`upstream URL ${c.input}`, () => {
    const upstream = parseUpstreamProxy(c.input);
    assert.equal(upstream.id, c.id);
    assert.equal(upstream.protocol, c.protocol);
    assert.equal(upstream.port, c.port);
  });
}

test('credentials are decoded, kept out of the id, and become Basic auth', () => {
  const upstream = parseUpstreamProxy('http://us%40r:p%3Ass@proxy.example:8080');
  assert.equal(upstream.username, 'us@r');
  assert.equal(upstream.password, 'p:ss');
  assert.ok(!upstream.id.includes('us'));
  assert.equal(proxyAuthorization(upstream), `Basic ${Buffer.from('us@r:p:ss').toString('base64')}`);
  assert.equal(proxyAuthorization(parseUpstreamProxy('http://proxy.example')), undefined);
});

test('weights and groups come from the object form', () => {
  const upstream = parseUpstreamProxy({ url: 'http://a.example:1', weight: 3, group: 'exits' });
  assert.equal(upstream.weight, 3);
  assert.equal(upstream.group, 'exits');
});

for (const [input, message] of [
  ['ftp://proxy.example', /unsupported upstream scheme "ftp"/],
  ['http://proxy.example/path', /no path/],
  ['http://', /not a URL|no host/],
  [{ url: 'http://a.example', weight: 0 }, /weight must be a positive integer/],
  [{ url: 'http://a.example', group: 'direct' }, /group must be a name other than "direct"/],
] as const) {
  test(`upstream ${JSON.stringify(input)} is refused`, () => assert.throws(() => parseUpstreamProxy(input), message));
}

test('proxyUserOf reads the Basic user name a client presented, and nothing else', () => {
  const headers = (value?: string) => ({ get: (name: string) => (name === 'proxy-authorization' ? value : undefined) });
  assert.equal(proxyUserOf(headers(`Basic ${Buffer.from('session-42:pw').toString('base64')}`)), 'session-42');
  assert.equal(proxyUserOf(headers('Bearer abc')), undefined);
  assert.equal(proxyUserOf(headers(`Basic ${Buffer.from('nocolon').toString('base64')}`)), undefined);
  assert.equal(proxyUserOf(headers()), undefined);
});
