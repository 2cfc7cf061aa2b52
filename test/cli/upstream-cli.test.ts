import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { curl } from '../helpers/clients.js';
import { startCliProxy } from '../helpers/cli-process.js';
import { startOrigin, startTlsOrigin, waitFor } from '../helpers/servers.js';
import { testCertificates } from '../helpers/test-ca.js';
import { startCountingProxy } from '../helpers/upstream-proxies.js';

test('--upstream repeated builds a pool; the log line names the upstream and the failed attempts', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const good = await startCountingProxy(t);
  const cli = await startCliProxy(t, ['--upstream', 'http://127.0.0.1:1', '--upstream', good.url, '--strategy', 'primary-backup']);
  assert.equal((await curl(['-x', cli.url, `${origin.url}/logged`])).stdout, 'ok');
  await waitFor(() => cli.lines.some((l) => l['target'] === `${origin.url}/logged`), 5000, 'the flow line');
  const line = cli.lines.find((l) => l['target'] === `${origin.url}/logged`)!;
  assert.equal(line['upstream'], `http://127.0.0.1:${good.port}`);
  const attempts = line['attempts'] as string[];
  assert.equal(attempts.length, 2);
  assert.match(attempts[0]!, /^http:\/\/127\.0\.0\.1:1 failed: .*ECONNREFUSED/);
  assert.equal(attempts[1], `http://127.0.0.1:${good.port} served`);
});

test('--upstream env follows HTTP_PROXY / HTTPS_PROXY / NO_PROXY', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const certs = testCertificates();
  const tlsOrigin = await startTlsOrigin(t, certs, (_req, res) => res.end('secure'));
  const httpExit = await startCountingProxy(t);
  const httpsExit = await startCountingProxy(t);
  // Loopback never goes through an env proxy (as in Go), so the targets are names that resolve nowhere: what the
  // test checks is which upstream was asked for them, not whether the fetch succeeds.
  const env = { ...process.env, HTTP_PROXY: httpExit.url, https_proxy: httpsExit.url, NO_PROXY: 'bypass.invalid' };
  const cli = await startCliProxy(t, ['--upstream', 'env'], env);
  const viaName = `http://origin.test:${origin.port}/`;
  await curl(['-x', cli.url, viaName]);
  assert.deepEqual(httpExit.requests, [viaName]);
  await curl(['-x', cli.url, '--cacert', certs.caCertPath, `https://tls.test:${tlsOrigin.port}/`]);
  assert.deepEqual(httpsExit.connects, [`tls.test:${tlsOrigin.port}`]);
  const bypass = await curl(['-x', cli.url, '-i', 'http://bypass.invalid/']);
  assert.match(bypass.stdout, /error=dns_error/, 'NO_PROXY sends it direct, where the name does not resolve');
  assert.equal(httpExit.requests.length, 1);
});

test('an https:// upstream (TLS to the proxy) verified with NODE_EXTRA_CA_CERTS', async (t) => {
  const certs = testCertificates();
  const origin = await startOrigin(t, (_req, res) => res.end('through TLS'));
  const tlsUpstream = await startCountingProxy(t, { tls: certs });
  const cli = await startCliProxy(t, ['--upstream', tlsUpstream.url], { ...process.env, NODE_EXTRA_CA_CERTS: certs.caCertPath });
  assert.equal((await curl(['-x', cli.url, origin.url])).stdout, 'through TLS');
  assert.equal((await curl(['-p', '-x', cli.url, origin.url])).stdout, 'through TLS');
  assert.equal(tlsUpstream.requests.length, 1);
  assert.equal(tlsUpstream.connects.length, 1);
});

for (const trust of ['--ca-bundle', '--insecure-upstream-tls'] as const) {
  test(`an https:// upstream trusted through ${trust}: plain requests, CONNECT tunnels and https:// requests all use it`, async (t) => {
    const certs = testCertificates();
    const origin = await startOrigin(t, (_req, res) => res.end('through TLS'));
    const tlsOrigin = await startTlsOrigin(t, certs, (_req, res) => res.end('secure through TLS'));
    const tlsUpstream = await startCountingProxy(t, { tls: certs });
    // The origin's certificate is signed by the same test CA: with --insecure-upstream-tls curl checks it itself.
    const cli = await startCliProxy(t, ['--upstream', tlsUpstream.url, ...(trust === '--ca-bundle' ? ['--ca-bundle', certs.caCertPath] : ['--insecure-upstream-tls'])]);
    assert.equal((await curl(['-x', cli.url, origin.url])).stdout, 'through TLS');
    const tunnelled = await curl(['-p', '-x', cli.url, origin.url]);
    assert.equal(tunnelled.stdout, 'through TLS', tunnelled.stderr);
    const https = await curl(['-x', cli.url, '--cacert', certs.caCertPath, `${tlsOrigin.url}/`]);
    assert.equal(https.stdout, 'secure through TLS', https.stderr);
    assert.equal(tlsUpstream.requests.length, 1);
    assert.equal(tlsUpstream.connects.length, 2);
  });
}

test('a config file with upstreams, weights, groups, strategy and routes', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const a = await startCountingProxy(t);
  const b = await startCountingProxy(t);
  const config = join(mkdtempSync(join(tmpdir(), 'getaway-upstream-')), 'getaway.yaml');
  writeFileSync(
    config,
    [
      'listen: 127.0.0.1:0',
      'strategy: round-robin',
      'upstreams:',
      `  - url: ${a.url}`,
      '    weight: 3',
      `  - ${b.url}`,
      'routes:',
      '  - match: ["localhost"]',
      '    via: direct',
    ].join('\n'),
  );
  const cli = await startCliProxy(t, ['--config', config]);
  for (let i = 0; i < 4; i++) await curl(['-x', cli.url, origin.url]);
  await curl(['-x', cli.url, `http://localhost:${origin.port}/`]);
  assert.deepEqual([a.requests.length, b.requests.length], [3, 1]);
});

test('a bad upstream in a config file is reported with the file and index', async (t) => {
  const config = join(mkdtempSync(join(tmpdir(), 'getaway-upstream-')), 'bad.yaml');
  writeFileSync(config, 'upstreams:\n  - ftp://nope.example\nroutes:\n  - match: x.example\n    via: nowhere\n');
  await assert.rejects(startCliProxy(t, ['--config', config]), /bad\.yaml\.upstreams\[0\]: "ftp:\/\/nope\.example": unsupported upstream scheme "ftp"[^]*bad\.yaml\.routes\[0\]\.via: expected "direct" or an upstream group/);
});
