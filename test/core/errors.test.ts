import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProxyError, toProxyError } from '../../src/core/errors.js';

const cases = [
  { code: 'ENOTFOUND', type: 'dns_error', status: 502 },
  { code: 'EAI_AGAIN', type: 'dns_error', status: 502 },
  { code: 'ECONNREFUSED', type: 'connection_refused', status: 502 },
  { code: 'ETIMEDOUT', type: 'connection_timeout', status: 504 },
  { code: 'ECONNRESET', type: 'connection_terminated', status: 502 },
  { code: 'EHOSTUNREACH', type: 'destination_ip_unroutable', status: 502 },
  { code: 'HPE_INVALID_CHUNK_SIZE', type: 'http_protocol_error', status: 502 },
  { code: 'CERT_HAS_EXPIRED', type: 'tls_certificate_error', status: 502 },
  { code: 'ERR_TLS_CERT_ALTNAME_INVALID', type: 'tls_certificate_error', status: 502 },
  { code: 'ERR_SSL_WRONG_VERSION_NUMBER', type: 'tls_protocol_error', status: 502 },
  { code: 'ESOMETHINGNEW', type: 'connection_terminated', status: 502 },
];

for (const c of cases) {
  test(`errno ${c.code} → ${c.type} ${c.status}`, () => {
    const err = Object.assign(new Error('x'), { code: c.code });
    const mapped = toProxyError(err, 'connection_terminated');
    assert.equal(mapped.type, c.type);
    assert.equal(mapped.status, c.status);
    assert.equal(mapped.cause, err);
  });
}

test('a ProxyError passes through unchanged and status can be overridden', () => {
  const original = new ProxyError('http_request_error', 'too big', { status: 431 });
  assert.equal(toProxyError(original, 'proxy_internal_error'), original);
  assert.equal(original.status, 431);
});
