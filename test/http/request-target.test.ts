import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAuthority, parseAuthorityForm, parseRequestTarget } from '../../src/http/request-target.js';

const valid = [
  { input: 'http://example.test/', expected: { form: 'absolute', scheme: 'http', host: 'example.test', port: 80, path: '/' } },
  { input: 'http://Example.TEST', expected: { form: 'absolute', scheme: 'http', host: 'example.test', port: 80, path: '/' } },
  { input: 'http://example.test:8080/a/b?c=d&e', expected: { form: 'absolute', scheme: 'http', host: 'example.test', port: 8080, path: '/a/b?c=d&e' } },
  { input: 'http://example.test?q=1', expected: { form: 'absolute', scheme: 'http', host: 'example.test', port: 80, path: '/?q=1' } },
  { input: 'HTTPS://example.test/x', expected: { form: 'absolute', scheme: 'https', host: 'example.test', port: 443, path: '/x' } },
  { input: 'http://127.0.0.1:3000/', expected: { form: 'absolute', scheme: 'http', host: '127.0.0.1', port: 3000, path: '/' } },
  { input: 'http://[::1]:3000/p', expected: { form: 'absolute', scheme: 'http', host: '::1', port: 3000, path: '/p' } },
  { input: 'http://[2001:db8::1]/', expected: { form: 'absolute', scheme: 'http', host: '2001:db8::1', port: 80, path: '/' } },
  { input: '/just/a/path', expected: { form: 'origin', path: '/just/a/path' } },
];

for (const { input, expected } of valid) {
  test(`request target ${input} parses`, () => {
    assert.deepEqual(parseRequestTarget(input), { ok: true, target: expected });
  });
}

const invalid = [
  { input: '*', reason: /asterisk-form/ },
  { input: 'example.test/', reason: /neither absolute-form nor origin-form/ },
  { input: 'ftp://example.test/', reason: /unsupported scheme "ftp"/ },
  { input: 'http://user:pass@example.test/', reason: /userinfo/ },
  { input: 'http:///path', reason: /empty authority/ },
  { input: 'http://example.test:0/', reason: /port 0 is out of range/ },
  { input: 'http://example.test:65536/', reason: /out of range/ },
  { input: 'http://example.test:8o/', reason: /invalid port/ },
  { input: 'http://exa mple.test/', reason: /invalid host/ },
  { input: 'http://[::1/', reason: /unterminated IPv6/ },
  { input: 'http://[not-ip]/', reason: /invalid IPv6/ },
  { input: 'http://example.test:/', reason: /invalid port ""/ },
];

for (const { input, reason } of invalid) {
  test(`request target ${JSON.stringify(input)} is refused`, () => {
    const result = parseRequestTarget(input);
    assert.equal(result.ok, false);
    assert.match((result as { reason: string }).reason, reason);
  });
}

const authorityCases = [
  { input: 'example.test:443', ok: true, host: 'example.test', port: 443 },
  { input: '127.0.0.1:22', ok: true, host: '127.0.0.1', port: 22 },
  { input: '[::1]:8443', ok: true, host: '::1', port: 8443 },
  { input: 'example.test', ok: false, reason: /needs a port/ },
  { input: 'example.test:0', ok: false, reason: /out of range/ },
  { input: 'example.test:', ok: false, reason: /invalid port/ },
  { input: ':443', ok: false, reason: /empty host/ },
  { input: 'user@example.test:443', ok: false, reason: /userinfo/ },
  { input: 'http://example.test:443', ok: false, reason: /invalid/ },
];

for (const c of authorityCases) {
  test(`CONNECT authority ${JSON.stringify(c.input)}`, () => {
    const result = parseAuthorityForm(c.input);
    if (c.ok) assert.deepEqual(result, { ok: true, target: { form: 'authority', host: c.host, port: c.port } });
    else {
      assert.equal(result.ok, false);
      assert.match((result as { reason: string }).reason, c.reason!);
    }
  });
}

test('formatAuthority omits the default port and brackets IPv6', () => {
  assert.equal(formatAuthority('example.test', 80, 'http'), 'example.test');
  assert.equal(formatAuthority('example.test', 443, 'http'), 'example.test:443');
  assert.equal(formatAuthority('::1', 8080, 'http'), '[::1]:8080');
  assert.equal(formatAuthority('example.test', 443, 'https'), 'example.test');
});
