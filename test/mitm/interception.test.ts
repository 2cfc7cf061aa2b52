/**
 * Interception end to end with real clients trusting the getaway CA: curl, Node (NODE_EXTRA_CA_CERTS), Python
 * requests (REQUESTS_CA_BUNDLE) and headless Chromium (NSS database). The origins use the separate test CA,
 * which only the proxy trusts (caBundle): the proxy verifies origins, clients verify the proxy.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HttpFlow, TunnelFlow } from '../../src/index.js';
import { curl, rawConnect, runPython } from '../helpers/clients.js';
import { testGetawayCa } from '../helpers/getaway-ca.js';
import { startOrigin, startProxy, startTcpServer, startTlsOrigin, waitFor } from '../helpers/servers.js';
import { testCertificates } from '../helpers/test-ca.js';

async function startMitmProxy(t: Parameters<typeof startProxy>[0], extra: Parameters<typeof startProxy>[1] = {}) {
  const { dir } = await testGetawayCa();
  return startProxy(t, { caBundle: [testCertificates().caCert], ...extra, mitm: { caDir: dir, peekTimeoutMs: 300, ...extra.mitm } });
}

test('curl trusting the getaway CA: decrypted requests pass through the hooks, which can read and change them', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (req, res) => res.end(`secret for ${req.url} (${String(req.headers['x-added'])})`));
  const seen: HttpFlow[] = [];
  const tunnels: TunnelFlow[] = [];
  const { url } = await startMitmProxy(t, {
    addons: [
      {
        name: 'inspect',
        requestHeaders: (flow) => void flow.request.headers.set('X-Added', 'by-hook'),
        responseHeaders: (flow) => void flow.response!.headers.set('X-Seen', 'decrypted'),
        response: (flow) => void seen.push(flow),
        tunnelClosed: (flow) => void tunnels.push(flow),
      },
    ],
  });
  const result = await curl(['-i', '--cacert', certPath, '-x', url, `${origin.url}/account`]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /X-Seen: decrypted/);
  assert.ok(result.stdout.endsWith('secret for /account (by-hook)'));
  await waitFor(() => seen.length === 1 && tunnels.length === 1);
  const flow = seen[0]!;
  assert.equal(flow.request.scheme, 'https');
  assert.equal(flow.request.path, '/account');
  assert.equal(flow.tunnel, tunnels[0]);
  assert.equal(tunnels[0]!.intercepted, true);
  assert.equal(tunnels[0]!.action, 'mitm');
});

test('Node with NODE_EXTRA_CA_CERTS (undici ProxyAgent) loads a page through the interception', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('hello node'));
  const { url } = await startMitmProxy(t);
  const script = `const { ProxyAgent, request } = require('undici');
request(process.argv[2], { dispatcher: new ProxyAgent(process.argv[1]) }).then((r) => r.body.text()).then((t) => process.stdout.write(t), (e) => { console.error(e); process.exit(1); });`;
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['-e', script, url, `${origin.url}/`], { env: { ...process.env, NODE_EXTRA_CA_CERTS: certPath }, timeout: 15_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
  assert.equal(out, 'hello node');
});

test('Python requests with REQUESTS_CA_BUNDLE loads a page through the interception', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('hello python'));
  const { url } = await startMitmProxy(t);
  const script = `import os, sys, requests
os.environ['REQUESTS_CA_BUNDLE'] = sys.argv[3]
print(requests.get(sys.argv[2], proxies={'https': sys.argv[1]}, timeout=10).text)`;
  const result = await runPython(script, [url, `${origin.url}/`, certPath]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'hello python\n');
});

test('headless Chromium with the CA in its NSS database loads a page through the interception', { timeout: 60_000 }, async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body><p id="x">hello chromium</p></body></html>'));
  const seen: string[] = [];
  const { url } = await startMitmProxy(t, { addons: [{ name: 'watch', response: (flow) => void seen.push(flow.request.path) }] });
  const home = mkdtempSync(join(tmpdir(), 'getaway-chromium-'));
  const nssdb = `sql:${join(home, '.pki', 'nssdb')}`;
  execFileSync('mkdir', ['-p', join(home, '.pki', 'nssdb')]);
  execFileSync('certutil', ['-N', '-d', nssdb, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', nssdb, '-n', 'getaway test CA', '-t', 'C,,', '-i', certPath]);
  const html = await new Promise<string>((resolve, reject) =>
    execFile(
      'chromium',
      [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--user-data-dir=${join(home, 'profile')}`,
        `--proxy-server=${url}`, '--proxy-bypass-list=<-loopback>', '--dump-dom', `${origin.url}/page`,
      ],
      { env: { ...process.env, HOME: home }, timeout: 45_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr.slice(-2000)}`)) : resolve(stdout)),
    ),
  );
  assert.match(html, /<p id="x">hello chromium<\/p>/);
  assert.ok(seen.includes('/page'), `decrypted paths: ${seen.join(', ')}`);
});

test('an origin with an untrusted or wrong-name certificate → 502 tls_certificate_error naming the reason', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('never'));
  // This proxy does not trust the test CA.
  const untrusting = await startProxy(t, { mitm: { caDir: (await testGetawayCa()).dir } });
  const untrusted = await curl(['-i', '--cacert', certPath, '-x', untrusting.url, `${origin.url}/`]);
  assert.match(untrusted.stdout, /^HTTP\/1\.1 502 /m);
  assert.match(untrusted.stdout, /Proxy-Status: getaway; error=tls_certificate_error; details="(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
  // This one trusts it, but the origin's certificate is for another name.
  const misnamed = await startTlsOrigin(t, { ...certs, leafKey: certs.otherLeafKey, leafCert: certs.otherLeafCert }, (_req, res) => res.end('never'));
  const trusting = await startMitmProxy(t);
  const wrongName = await curl(['-i', '--cacert', certPath, '-x', trusting.url, `${misnamed.url}/`]);
  assert.match(wrongName.stdout, /^HTTP\/1\.1 502 /m);
  assert.match(wrongName.stdout, /error=tls_certificate_error; details="ERR_TLS_CERT_ALTNAME_INVALID/);
});

test('non-TLS traffic in a tunnel passes through untouched, client-first and server-first alike', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('plain inside CONNECT'));
  const banner = await startTcpServer(t, (socket) => {
    socket.write('220 smtp.example ready\r\n');
    socket.on('end', () => socket.end());
  });
  const seen: TunnelFlow[] = [];
  const { url, port } = await startMitmProxy(t, { addons: [{ name: 'watch', tunnelClosed: (flow) => void seen.push(flow) }] });
  assert.equal((await curl(['-p', '-x', url, origin.url])).stdout, 'plain inside CONNECT');
  const conn = await rawConnect(port);
  conn.socket.write(`CONNECT 127.0.0.1:${banner.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.waitFor('220 smtp.example ready', 3000);
  conn.socket.end();
  await waitFor(() => seen.length === 2);
  assert.deepEqual(seen.map((f) => f.intercepted), [false, false]);
});

test('--mitm-hosts / excludeHosts: an excluded host is tunnelled, the client sees the origin\'s own certificate', async (t) => {
  const certs = testCertificates();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('untouched'));
  const { url } = await startMitmProxy(t, { mitm: { excludeHosts: ['localhost'] } });
  const result = await curl(['--cacert', certs.caCertPath, '-x', url, `${origin.url}/`]);
  assert.equal(result.stdout, 'untouched', result.stderr);
});

test('a client that rejects our certificate (pinning) gets its host tunnelled untouched afterwards; other clients are still inspected', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('reached the real origin'));
  const tunnels: TunnelFlow[] = [];
  const { url } = await startMitmProxy(t, { addons: [{ name: 'watch', tunnelClosed: (flow) => void tunnels.push(flow) }] });
  // Trusting only the origin's real CA, like an app that pins it: our leaf is refused.
  const pinned = await curl(['--cacert', certs.caCertPath, '-x', url, `${origin.url}/`]);
  assert.equal(pinned.code, 60);
  const next = await curl(['--cacert', certs.caCertPath, '-x', url, `${origin.url}/`]);
  assert.equal(next.stdout, 'reached the real origin', next.stderr);
  // The same client trusting our CA now sees the real certificate, so it fails: for it the host is no longer intercepted.
  assert.equal((await curl(['--cacert', certPath, '-x', url, `${origin.url}/`])).code, 60);
  // Another client (another loopback source address) is still intercepted: one client's refusal is not everyone's.
  const other = await curl(['--interface', '127.0.0.2', '--cacert', certPath, '-x', url, `${origin.url}/`]);
  assert.equal(other.stdout, 'reached the real origin', other.stderr);
  await waitFor(() => tunnels.length === 4);
  assert.deepEqual(tunnels.map((f) => f.action), ['mitm', 'tunnel', 'tunnel', 'mitm']);
  assert.equal(tunnels[3]!.client.remoteAddress, '127.0.0.2');
});

test('a client offering no ECDSA signature scheme gets an RSA leaf; others get ECDSA', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('ok'));
  const { port } = await startMitmProxy(t);
  // Asynchronously: the proxy runs in this process, so a synchronous child would deadlock it.
  const keyType = async (extra: string[]): Promise<string> => {
    const output = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        'openssl',
        ['s_client', '-proxy', `127.0.0.1:${port}`, '-connect', `localhost:${origin.port}`, '-servername', 'localhost', '-CAfile', certPath, ...extra],
        { timeout: 15_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      );
      child.stdin!.end('\n');
    });
    assert.match(output, /Verify return code: 0 \(ok\)/);
    return `${/Peer signature type: (\S+)/.exec(output)?.[1]} ${/Server public key is (\d+) bit/.exec(output)?.[1]}`;
  };
  assert.match(await keyType(['-sigalgs', 'RSA-PSS+SHA256:RSA+SHA256']), /^RSA(-PSS)? 2048$/);
  assert.equal(await keyType([]), 'ECDSA 256');
});

test('an IP target without SNI gets an IP SAN that curl accepts', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('by address'));
  const { url } = await startMitmProxy(t);
  const result = await curl(['--cacert', certPath, '-x', url, `https://127.0.0.1:${origin.port}/`]);
  assert.equal(result.stdout, 'by address', result.stderr);
});

test('upstreamCert: the leaf also carries the names of the origin\'s own certificate', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('ok'));
  const { port } = await startMitmProxy(t, { mitm: { upstreamCert: true } });
  const output = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      'openssl',
      ['s_client', '-proxy', `127.0.0.1:${port}`, '-connect', `localhost:${origin.port}`, '-servername', 'localhost', '-CAfile', certPath, '-showcerts'],
      { timeout: 15_000 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    );
    child.stdin!.end('\n');
  });
  const leafPem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(output)?.[0];
  assert.ok(leafPem !== undefined, output);
  const { X509Certificate } = await import('node:crypto');
  // The origin's certificate names localhost and 127.0.0.1; the SNI alone would give only localhost.
  assert.equal(new X509Certificate(leafPem).subjectAltName, 'DNS:localhost, IP Address:127.0.0.1');
});

test('intercepted requests carry the CONNECT\'s authenticated user, and the destination check covers them', async (t) => {
  const certs = testCertificates();
  const { certPath } = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('inside'));
  const users: Array<string | undefined> = [];
  const open = await startMitmProxy(t, {
    auth: { users: ['mallory:pw'] },
    addons: [{ name: 'users', response: (flow) => void users.push(flow.user) }],
  });
  const result = await curl(['-s', '--cacert', certPath, '-x', open.url, '--proxy-user', 'mallory:pw', `${origin.url}/`]);
  assert.equal(result.stdout, 'inside', result.stderr);
  await waitFor(() => users.length === 1);
  assert.deepEqual(users, ['mallory']);
  // Beyond loopback: the CONNECT dials nothing when intercepted; the decrypted request's dial is what gets checked.
  const exposed = await startMitmProxy(t, { host: '0.0.0.0', allowClients: ['127.0.0.1/32'], connectPorts: '*' });
  const refused = await curl(['-s', '-i', '--cacert', certPath, '-x', `http://127.0.0.1:${exposed.port}`, `${origin.url}/`]);
  assert.match(refused.stdout, /HTTP\/1\.1 403 [^]*error=destination_ip_prohibited/);
});
