/**
 * HTTP(S)_PROXY / ALL_PROXY / NO_PROXY decisions, against what curl and Go's httpproxy do. Where the two tools
 * differ the case says which one we follow (and config/env-proxy.ts says why).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envProxyFor, readEnvProxy } from '../../src/config/env-proxy.js';

type Case = { name: string; env: Record<string, string>; scheme: 'http' | 'https'; host: string; port?: number; expected: string | undefined };

const P = 'http://proxy.example:3128';
const Q = 'http://other.example:8080';

const cases: Case[] = [
  { name: 'http uses http_proxy (both)', env: { http_proxy: P }, scheme: 'http', host: 'a.example', expected: P },
  { name: 'https uses https_proxy, never http_proxy (both)', env: { http_proxy: P }, scheme: 'https', host: 'a.example', expected: undefined },
  { name: 'HTTPS_PROXY in upper case works (both)', env: { HTTPS_PROXY: P }, scheme: 'https', host: 'a.example', expected: P },
  { name: 'HTTP_PROXY in upper case works (Go; curl ignores it)', env: { HTTP_PROXY: P }, scheme: 'http', host: 'a.example', expected: P },
  { name: 'lower case wins over upper case (curl; Go prefers upper)', env: { http_proxy: P, HTTP_PROXY: Q }, scheme: 'http', host: 'a.example', expected: P },
  { name: 'HTTP_PROXY is ignored under CGI (httpoxy; both)', env: { HTTP_PROXY: P, REQUEST_METHOD: 'GET' }, scheme: 'http', host: 'a.example', expected: undefined },
  { name: 'ALL_PROXY is the fallback (curl)', env: { ALL_PROXY: P }, scheme: 'https', host: 'a.example', expected: P },
  { name: 'the scheme variable beats ALL_PROXY (curl)', env: { all_proxy: Q, https_proxy: P }, scheme: 'https', host: 'a.example', expected: P },
  { name: 'NO_PROXY=* disables the proxy (both)', env: { http_proxy: P, NO_PROXY: '*' }, scheme: 'http', host: 'a.example', expected: undefined },
  { name: 'NO_PROXY domain matches itself (both)', env: { http_proxy: P, no_proxy: 'example.com' }, scheme: 'http', host: 'example.com', expected: undefined },
  { name: 'NO_PROXY domain matches subdomains (both)', env: { http_proxy: P, no_proxy: 'example.com' }, scheme: 'http', host: 'www.example.com', expected: undefined },
  { name: 'NO_PROXY suffix is on label boundaries (both)', env: { http_proxy: P, no_proxy: 'example.com' }, scheme: 'http', host: 'badexample.com', expected: P },
  { name: 'NO_PROXY leading dot matches the domain itself (curl; Go does not)', env: { http_proxy: P, no_proxy: '.example.com' }, scheme: 'http', host: 'example.com', expected: undefined },
  { name: 'NO_PROXY leading dot matches subdomains (both)', env: { http_proxy: P, no_proxy: '.example.com' }, scheme: 'http', host: 'a.example.com', expected: undefined },
  { name: 'NO_PROXY *. prefix (Go)', env: { http_proxy: P, no_proxy: '*.example.com' }, scheme: 'http', host: 'a.example.com', expected: undefined },
  { name: 'NO_PROXY *. prefix does not exempt the bare domain (both)', env: { http_proxy: P, no_proxy: '*.example.com' }, scheme: 'http', host: 'example.com', expected: P },
  { name: 'a name under localhost is proxied; only "localhost" itself is special (both)', env: { http_proxy: P }, scheme: 'http', host: 'foo.localhost', expected: P },
  { name: 'NO_PROXY bracketed IPv6 without a port exempts nothing (both)', env: { http_proxy: P, no_proxy: '[2001:db8::1]' }, scheme: 'http', host: '2001:db8::1', expected: P },
  { name: 'NO_PROXY bare IPv6 address exempts it (both)', env: { http_proxy: P, no_proxy: '2001:db8::1' }, scheme: 'http', host: '2001:db8::1', expected: undefined },
  { name: 'NO_PROXY bracketed IPv6 with a port exempts that port (Go)', env: { http_proxy: P, no_proxy: '[2001:db8::1]:80' }, scheme: 'http', host: '2001:db8::1', expected: undefined },
  { name: 'NO_PROXY list with spaces (both)', env: { http_proxy: P, no_proxy: 'a.example, b.example' }, scheme: 'http', host: 'b.example', expected: undefined },
  { name: 'NO_PROXY with a port matches only that port (Go)', env: { http_proxy: P, no_proxy: 'example.com:8080' }, scheme: 'http', host: 'example.com', port: 8080, expected: undefined },
  { name: 'NO_PROXY with a port leaves other ports proxied (Go)', env: { http_proxy: P, no_proxy: 'example.com:8080' }, scheme: 'http', host: 'example.com', port: 80, expected: P },
  { name: 'NO_PROXY IP address (both)', env: { http_proxy: P, no_proxy: '192.0.2.7' }, scheme: 'http', host: '192.0.2.7', expected: undefined },
  { name: 'NO_PROXY CIDR (both)', env: { http_proxy: P, no_proxy: '10.0.0.0/8' }, scheme: 'http', host: '10.20.30.40', expected: undefined },
  { name: 'NO_PROXY CIDR does not match names (both)', env: { http_proxy: P, no_proxy: '10.0.0.0/8' }, scheme: 'http', host: 'ten.example', expected: P },
  { name: 'NO_PROXY IPv6 CIDR (both)', env: { https_proxy: P, no_proxy: '2001:db8::/32' }, scheme: 'https', host: '2001:db8::1', expected: undefined },
  { name: 'loopback never goes through a proxy (Go)', env: { http_proxy: P }, scheme: 'http', host: '127.0.0.1', expected: undefined },
  { name: 'localhost never goes through a proxy (Go)', env: { http_proxy: P }, scheme: 'http', host: 'localhost', expected: undefined },
  { name: 'NO_PROXY in upper case works (both)', env: { http_proxy: P, NO_PROXY: 'example.com' }, scheme: 'http', host: 'example.com', expected: undefined },
  { name: 'an unusable NO_PROXY entry is ignored, the rest applies (both)', env: { http_proxy: P, no_proxy: '10.0.0.0/99,example.com' }, scheme: 'http', host: 'example.com', expected: undefined },
  { name: 'empty variables count as unset (both)', env: { http_proxy: '', HTTP_PROXY: P }, scheme: 'http', host: 'a.example', expected: P },
];

for (const c of cases) {
  test(`env proxy: ${c.name}`, () => {
    assert.equal(envProxyFor(readEnvProxy(c.env), c.scheme, c.host, c.port ?? (c.scheme === 'http' ? 80 : 443)), c.expected);
  });
}
