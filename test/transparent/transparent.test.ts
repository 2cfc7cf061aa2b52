/**
 * Transparent mode end to end: a client namespace whose traffic to an origin namespace crosses a router namespace
 * where the recipes of docs/transparent.md (run exactly as the docs print them) send it to `getaway serve
 * --transparent`. The client is plain curl (and a Node TCP client for a server-first protocol), configured with no
 * proxy at all.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { CLI_PATH } from '../helpers/cli-process.js';
import { ADDRESSES, createTopology, waitForLine, type Topology } from '../helpers/netns.js';

const ORIGIN_SERVER = fileURLToPath(new URL('./origin-server.js', import.meta.url));
const DOCS = fileURLToPath(new URL('../../../docs/transparent.md', import.meta.url));
const PORTS = '80,443,25';

/** The shell blocks of docs/transparent.md, by the `<!-- recipe: NAME -->` marker above each. */
function recipes(): Map<string, string> {
  const text = readFileSync(DOCS, 'utf8');
  const found = new Map<string, string>();
  for (const match of text.matchAll(/<!-- recipe: ([a-z-]+) -->\n```sh\n([\s\S]*?)```/g)) found.set(match[1]!, match[2]!);
  return found;
}

interface OriginCertificates {
  caPath: string;
  certPath: string;
  keyPath: string;
}

/** A CA and a leaf for origin.test only (no IP address in it: a request by address cannot verify). */
function originCertificates(): OriginCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-transparent-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=transparent test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'origin.key', '-out', 'origin.csr', '-subj', '/CN=origin.test');
  writeFileSync(join(dir, 'origin.ext'), 'subjectAltName=DNS:origin.test\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'origin.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'origin.pem', '-days', '2', '-extfile', 'origin.ext');
  return { caPath: join(dir, 'ca.pem'), certPath: join(dir, 'origin.pem'), keyPath: join(dir, 'origin.key') };
}

interface Running {
  topology: Topology;
  port: number;
  /** getaway's JSON log lines so far. */
  lines: Array<Record<string, unknown>>;
  flowLine(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  curl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

async function startRedirected(t: TestContext, certificates: OriginCertificates, options: { mode: 'redirect' | 'tproxy'; recipe: string; args?: string[] }): Promise<Running> {
  const recipe = recipes().get(options.recipe);
  assert.ok(recipe, `docs/transparent.md has the ${options.recipe} recipe`);
  const topology = createTopology(t, { 'origin.test': ADDRESSES.origin.v4, 'origin6.test': ADDRESSES.origin.v6 });
  const originLines: Array<Record<string, unknown>> = [];
  const origin = topology.spawn(topology.origin, process.execPath, [ORIGIN_SERVER, certificates.certPath, certificates.keyPath]);
  await waitForLine(origin, originLines, (line) => line['ready'] === true);

  const lines: Array<Record<string, unknown>> = [];
  const proxy = topology.spawn(topology.router, process.execPath, [
    CLI_PATH, 'serve', '--listen', 'none', '--transparent', '[::]:0', '--transparent-mode', options.mode,
    // The origin is on a private network, and port 25 is not a default CONNECT port for an exposed proxy.
    '--allow-private', '--connect-ports', '443,25', '--log-level', 'info', ...(options.args ?? []),
  ]);
  const listening = await waitForLine(proxy, lines, (line) => line['listener'] === 'transparent' && typeof line['port'] === 'number');
  const port = listening['port'] as number;
  const applied = await topology.exec(topology.router, 'sh', ['-ec', recipe], {
    env: { ...process.env, LAN_IF: topology.lanInterface, PORTS, GETAWAY_PORT: String(port), GETAWAY_USER: 'root' },
  });
  assert.equal(applied.code, 0, `the ${options.recipe} recipe applies: ${applied.stderr}`);
  return {
    topology,
    port,
    lines,
    flowLine: (match) => waitForLine(proxy, lines, (line) => typeof line['flowId'] === 'string' && match(line)),
    curl: (args) => topology.exec(topology.client, 'curl', ['-sS', '--max-time', '10', ...args]),
  };
}

/** What the origin said it received, from its JSON answer. */
function originSaw(stdout: string): Record<string, unknown> {
  try {
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    assert.fail(`the origin's answer is JSON: ${JSON.stringify(stdout)}`);
  }
}

/** A TCP client in the client namespace for the server-first protocol on port 25: banner, one echo, half-close. */
const BANNER_CLIENT = `
const net = require('node:net');
const socket = net.connect({ host: process.argv[1], port: 25, allowHalfOpen: true });
let got = '';
let sent = false;
socket.on('data', (chunk) => {
  got += chunk;
  if (!sent && got.includes('\\r\\n')) { sent = true; socket.write('ping\\r\\n'); }
  else if (sent && got.includes('ping\\r\\n')) socket.end();
});
socket.on('end', () => { process.stdout.write(JSON.stringify({ got })); });
socket.on('error', (err) => { process.stdout.write(JSON.stringify({ error: err.code })); });
setTimeout(() => { process.stdout.write(JSON.stringify({ timeout: got })); process.exit(1); }, 8000).unref();
`;

const MODES = [
  { mode: 'redirect', recipe: 'redirect-nftables' },
  { mode: 'redirect', recipe: 'redirect-iptables' },
  { mode: 'tproxy', recipe: 'tproxy-nftables' },
  { mode: 'tproxy', recipe: 'tproxy-iptables' },
] as const;

describe('transparent mode in network namespaces', () => {
  const certificates = originCertificates();

  for (const { mode, recipe } of MODES) {
    test(`${recipe}: HTTP over IPv4 and IPv6, TLS tunnelled, a server-first protocol; the original destination on every flow`, async (t) => {
      const running = await startRedirected(t, certificates, { mode, recipe });
      const { topology } = running;

      const http = await running.curl(['--resolve', `origin.test:80:${ADDRESSES.origin.v4}`, 'http://origin.test/plain?x=1']);
      assert.equal(http.code, 0, http.stderr);
      const saw = originSaw(http.stdout);
      assert.equal(saw['host'], 'origin.test');
      assert.equal(saw['url'], '/plain?x=1');
      assert.match(String(saw['via']), /getaway/, 'the request passed through getaway (Via)');
      // The origin's peer is the router, not the client: getaway made the connection.
      assert.equal(saw['peer'], `::ffff:${ADDRESSES.routerWan.v4}`);
      const httpFlow = await running.flowLine((line) => String(line['target']).endsWith('/plain?x=1'));
      assert.equal(httpFlow['target'], 'http://origin.test/plain?x=1', 'the Host name checks out, so the flow goes by it');
      assert.equal(httpFlow['destination'], `${ADDRESSES.origin.v4}:80`);
      assert.equal(httpFlow['status'], 200);
      assert.equal(httpFlow['client'], `${ADDRESSES.client.v4}:${String(httpFlow['client']).split(':').pop()}`);

      const v6 = await running.curl(['-g', `http://[${ADDRESSES.origin.v6}]/six`]);
      assert.equal(v6.code, 0, v6.stderr);
      assert.match(String(originSaw(v6.stdout)['via']), /getaway/);
      const v6Flow = await running.flowLine((line) => String(line['target']).endsWith('/six'));
      assert.equal(v6Flow['destination'], `[${ADDRESSES.origin.v6}]:80`);

      const tls = await running.curl(['--cacert', certificates.caPath, '--resolve', `origin.test:443:${ADDRESSES.origin.v4}`, 'https://origin.test/secure']);
      assert.equal(tls.code, 0, tls.stderr);
      const tlsSaw = originSaw(tls.stdout);
      assert.equal(tlsSaw['scheme'], 'https');
      assert.equal(tlsSaw['via'], undefined, 'tunnelled, not intercepted: the request is the client\'s own');
      assert.equal(tlsSaw['peer'], `::ffff:${ADDRESSES.routerWan.v4}`, 'the tunnel ran through getaway');
      const tunnel = await running.flowLine((line) => line['kind'] === 'tunnel' && line['target'] === 'origin.test:443');
      assert.equal(tunnel['method'], 'CONNECT');
      assert.equal(tunnel['destination'], `${ADDRESSES.origin.v4}:443`);
      assert.ok((tunnel['bytesUp'] as number) > 0 && (tunnel['bytesDown'] as number) > 0);

      const banner = await topology.exec(topology.client, process.execPath, ['-e', BANNER_CLIENT, ADDRESSES.origin.v4]);
      const heard = JSON.parse(banner.stdout) as { got?: string };
      assert.equal(heard.got, `220 origin ready for ::ffff:${ADDRESSES.routerWan.v4}\r\nping\r\n221 bye\r\n`, 'banner after the peek, echo, and the half-close both ways');
      const raw = await running.flowLine((line) => line['target'] === `${ADDRESSES.origin.v4}:25`);
      assert.equal(raw['destination'], `${ADDRESSES.origin.v4}:25`);
    });
  }

  test('a Host or SNI that does not resolve to the destination is logged and the destination wins', async (t) => {
    const running = await startRedirected(t, certificates, { mode: 'redirect', recipe: 'redirect-nftables' });
    const lying = await running.curl(['-H', 'Host: elsewhere.test', `http://${ADDRESSES.origin.v4}/lie`]);
    assert.equal(lying.code, 0, lying.stderr);
    assert.equal(originSaw(lying.stdout)['host'], 'elsewhere.test', 'Host is passed on as the client sent it');
    const flow = await running.flowLine((line) => String(line['target']).endsWith('/lie'));
    assert.equal(flow['target'], `http://${ADDRESSES.origin.v4}/lie`, 'the flow goes by the address, not the unverified name');
    assert.ok(running.lines.some((line) => /Host "elsewhere\.test" does not resolve to the original destination/.test(String(line['msg']))));

    // A TLS client naming another host: the tunnel goes where it connected, named by the address.
    const sni = await running.curl(['-k', '--resolve', `wrong.test:443:${ADDRESSES.origin.v4}`, 'https://wrong.test/sni']);
    assert.equal(sni.code, 0, sni.stderr);
    await running.flowLine((line) => line['kind'] === 'tunnel' && line['target'] === `${ADDRESSES.origin.v4}:443`);
    assert.ok(running.lines.some((line) => /TLS server name "wrong\.test" does not resolve/.test(String(line['msg']))));
  });

  test('with --mitm, redirected TLS is intercepted with a leaf for the SNI; the decrypted requests are flows with the destination', async (t) => {
    const caDir = mkdtempSync(join(tmpdir(), 'getaway-transparent-ca-'));
    t.after(() => rmSync(caDir, { recursive: true, force: true }));
    execFileSync(process.execPath, [CLI_PATH, 'ca', 'init', '--ca-dir', caDir], { stdio: 'ignore' });
    const running = await startRedirected(t, certificates, {
      mode: 'tproxy',
      recipe: 'tproxy-nftables',
      args: ['--mitm', '--ca-dir', caDir, '--ca-bundle', certificates.caPath],
    });
    const getawayCa = join(caDir, 'getaway-ca.pem');
    const response = await running.curl(['--cacert', getawayCa, '--resolve', `origin.test:443:${ADDRESSES.origin.v4}`, 'https://origin.test/intercepted']);
    assert.equal(response.code, 0, response.stderr);
    const saw = originSaw(response.stdout);
    assert.equal(saw['scheme'], 'https');
    assert.match(String(saw['via']), /getaway/, 'decrypted and forwarded by getaway');
    const flow = await running.flowLine((line) => String(line['target']).endsWith('/intercepted'));
    assert.equal(flow['target'], 'https://origin.test/intercepted');
    assert.equal(flow['destination'], `${ADDRESSES.origin.v4}:443`);

    // A name that does not check out: the leaf names it, but the request goes to the address, whose certificate
    // does not name it, so getaway refuses to pass on an unverified origin.
    const lying = await running.curl(['--cacert', getawayCa, '--resolve', `wrong.test:443:${ADDRESSES.origin.v4}`, '-o', '/dev/null', '-w', '%{http_code}', 'https://wrong.test/x']);
    assert.equal(lying.stdout, '502', lying.stderr);
  });

  test('a CONNECT sent to a redirected port is refused with 405; a tunnel to a port outside --connect-ports is a closed connection', async (t) => {
    const running = await startRedirected(t, certificates, { mode: 'redirect', recipe: 'redirect-nftables', args: ['--connect-ports', '443'] });
    const connect = await running.curl(['-p', '-x', `http://${ADDRESSES.origin.v4}:80`, '-o', '/dev/null', '-w', '%{http_connect}', 'https://origin.test/']);
    assert.equal(connect.stdout, '405', connect.stderr);
    const banner = await running.topology.exec(running.topology.client, process.execPath, ['-e', BANNER_CLIENT, ADDRESSES.origin.v4]);
    const heard = JSON.parse(banner.stdout) as { got?: string; error?: string };
    assert.ok(heard.error === 'ECONNRESET' || heard.got === '', `closed without a byte from the origin: ${banner.stdout}`);
    const refused = await running.flowLine((line) => line['target'] === `${ADDRESSES.origin.v4}:25`);
    assert.equal(refused['error'], 'http_request_denied');
    assert.match(String(refused['errorDetails']), /port 25 is not allowed/);
    // Still serving.
    const http = await running.curl([`http://${ADDRESSES.origin.v4}/after`]);
    assert.equal(http.code, 0, http.stderr);
  });

  for (const recipe of ['local-nftables', 'local-iptables']) {
    test(`${recipe}: programs on the proxy's own machine are redirected, getaway's own connections are not (no loop)`, async (t) => {
      const running = await startRedirected(t, certificates, { mode: 'redirect', recipe });
      const { topology } = running;
      // The client runs as nobody on the router itself; getaway runs as root, which the recipe leaves out.
      const local = await topology.exec(topology.router, 'setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'curl', '-sS', '--max-time', '10', `http://${ADDRESSES.origin.v4}/local`]);
      assert.equal(local.code, 0, local.stderr);
      assert.match(String(originSaw(local.stdout)['via']), /getaway/);
      const flow = await running.flowLine((line) => String(line['target']).endsWith('/local'));
      assert.equal(flow['destination'], `${ADDRESSES.origin.v4}:80`);
      assert.equal(running.lines.filter((line) => String(line['target']).endsWith('/local')).length, 1, 'one flow: the proxy\'s own request was not redirected back');
    });
  }
});
