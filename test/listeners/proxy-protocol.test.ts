import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ClientInfo } from '../../src/index.js';
import { formatProxyProtocolV1, formatProxyProtocolV2, parseProxyProtocol } from '../../src/listeners/proxy-protocol.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy } from '../helpers/servers.js';
import { accepts, freePort } from '../helpers/upstream-proxies.js';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v2(command: number, family: number, body: Buffer): Buffer {
  const head = Buffer.alloc(16);
  SIGNATURE.copy(head);
  head[12] = 0x20 | command;
  head[13] = family;
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
}

test('parser: v1 TCP4, TCP6 and UNKNOWN; v2 INET, INET6 with TLVs and LOCAL; incomplete and invalid input', () => {
  const tcp4 = parseProxyProtocol(Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 51000 3128\r\nGET'));
  assert.deepEqual(tcp4.kind === 'header' && [tcp4.length, tcp4.header.source, tcp4.header.destination], [47, { address: '192.0.2.10', port: 51000 }, { address: '198.51.100.1', port: 3128 }]);
  const tcp6 = parseProxyProtocol(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'));
  assert.equal(tcp6.kind === 'header' && tcp6.header.source?.address, '2001:db8::1');
  const unknown = parseProxyProtocol(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'));
  assert.equal(unknown.kind === 'header' && unknown.header.command, 'local');
  assert.equal(parseProxyProtocol(Buffer.from('PROXY TCP4 192.0.2.10')).kind, 'incomplete');
  assert.equal(parseProxyProtocol(Buffer.from('PRO')).kind, 'incomplete');
  for (const bad of ['GET / HTTP/1.1\r\n', 'PROXY TCP4 ::1 192.0.2.1 1 2\r\n', 'PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n', 'PROXY TCP5 a b 1 2\r\n', `PROXY TCP4 ${'1'.repeat(120)}`]) {
    assert.equal(parseProxyProtocol(Buffer.from(bad)).kind, 'invalid', bad);
  }

  const inet = Buffer.alloc(12);
  Buffer.from([203, 0, 113, 7]).copy(inet, 0);
  Buffer.from([127, 0, 0, 1]).copy(inet, 4);
  inet.writeUInt16BE(40000, 8);
  inet.writeUInt16BE(8080, 10);
  const tlvs = Buffer.concat([Buffer.from([0x02, 0x00, 0x0b]), Buffer.from('example.com'), Buffer.from([0x05, 0x00, 0x02, 0xab, 0xcd])]);
  const parsed = parseProxyProtocol(Buffer.concat([v2(1, 0x11, Buffer.concat([inet, tlvs])), Buffer.from('rest')]));
  assert.ok(parsed.kind === 'header');
  assert.deepEqual(parsed.header.source, { address: '203.0.113.7', port: 40000 });
  assert.equal(parsed.length, 16 + 12 + tlvs.length);
  assert.deepEqual(parsed.header.tlvs.map((tlv) => [tlv.type, tlv.value.toString('hex')]), [[2, Buffer.from('example.com').toString('hex')], [5, 'abcd']]);

  const inet6 = Buffer.alloc(36);
  inet6.writeUInt16BE(0x2001, 0);
  inet6.writeUInt16BE(0x0db8, 2);
  inet6[15] = 1;
  const six = parseProxyProtocol(v2(1, 0x21, inet6));
  assert.equal(six.kind === 'header' && six.header.source?.address, '2001:db8::1');
  const local = parseProxyProtocol(v2(0, 0x00, Buffer.alloc(0)));
  assert.equal(local.kind === 'header' && local.header.command, 'local');
  assert.equal(parseProxyProtocol(v2(1, 0x11, Buffer.alloc(5))).kind, 'invalid', 'address block too short');
  assert.equal(parseProxyProtocol(v2(1, 0x11, Buffer.concat([inet, Buffer.from([0x01, 0x00, 0x09, 0x00])]))).kind, 'invalid', 'TLV overrun');
  assert.equal(parseProxyProtocol(v2(1, 0x12, inet)).kind, 'invalid', 'UDP is not for us');
  assert.equal(parseProxyProtocol(v2(1, 0x11, inet).subarray(0, 20)).kind, 'incomplete');

  for (const format of [formatProxyProtocolV1, formatProxyProtocolV2]) {
    const round = parseProxyProtocol(format({ address: '::ffff:192.0.2.5', port: 1234 }, { address: '2001:db8::9', port: 3128 }));
    assert.ok(round.kind === 'header', format.name);
    assert.deepEqual([round.header.source, round.header.destination], [{ address: '192.0.2.5', port: 1234 }, { address: '2001:db8::9', port: 3128 }]);
    const four = parseProxyProtocol(format({ address: '192.0.2.5', port: 1 }, { address: '127.0.0.1', port: 2 }));
    assert.deepEqual(four.kind === 'header' && four.header.source, { address: '192.0.2.5', port: 1 });
  }
});

async function recordClients(t: TestContext, trusted: string[], allowClients?: string[]): Promise<{ port: number; clients: ClientInfo[] }> {
  const clients: ClientInfo[] = [];
  const started = await startProxy(t, {
    acceptProxyProtocol: { trusted, headerTimeoutMs: 500 },
    ...(allowClients === undefined ? {} : { allowClients }),
    addons: [{ name: 'clients', clientConnected: (client) => void clients.push(client) }],
  });
  return { port: started.port, clients };
}

test('a trusted balancer\'s header makes the real client the flow\'s client; request bytes in the same packet are kept', async (t) => {
  const origin = await startOrigin(t, (req, res) => res.end(`from ${req.socket.remoteAddress}`));
  const { port, clients } = await recordClients(t, ['127.0.0.1/32']);
  const client = await rawConnect(port);
  client.socket.write(Buffer.concat([
    formatProxyProtocolV2({ address: '203.0.113.7', port: 40000 }, { address: '127.0.0.1', port }),
    Buffer.from(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
  ]));
  const answer = (await client.untilEnd()).toString('latin1');
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.equal(clients[0]!.remoteAddress, '203.0.113.7');
  assert.equal(clients[0]!.remotePort, 40000);
  assert.equal(clients[0]!.proxyProtocol?.version, 2);
});

test('untrusted peers, missing, malformed or late headers close the connection; the proxy keeps serving', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const untrusted = await recordClients(t, ['10.0.0.0/8']);
  const refused = await rawConnect(untrusted.port);
  refused.socket.write(formatProxyProtocolV1({ address: '203.0.113.7', port: 1 }, { address: '127.0.0.1', port: 2 }));
  assert.equal((await refused.untilEnd()).length, 0);

  const { port, clients } = await recordClients(t, ['127.0.0.1']);
  for (const bytes of [`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`, 'PROXY TCP4 1.2.3.4\r\n', Buffer.concat([SIGNATURE, Buffer.from([0x31, 0x11, 0, 0])])]) {
    const bad = await rawConnect(port);
    bad.socket.write(bytes);
    assert.equal((await bad.untilEnd()).length, 0, String(bytes));
  }
  const silent = await rawConnect(port);
  const started = Date.now();
  await silent.untilEnd(3000);
  assert.ok(Date.now() - started >= 400, 'closed by the header timeout');
  assert.equal(clients.length, 0, 'none of them reached admission');

  const good = await rawConnect(port);
  good.socket.write(Buffer.concat([formatProxyProtocolV1({ address: '198.51.100.20', port: 5 }, { address: '127.0.0.1', port }), Buffer.from(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)]));
  assert.match((await good.untilEnd()).toString('latin1'), /^HTTP\/1\.1 200 [^]*ok$/);
  assert.equal(clients[0]!.remoteAddress, '198.51.100.20');
});

/** Resolves once HAProxy accepts TCP connections on `port`, within `timeoutMs`. */
async function untilListening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await accepts(port))) {
    if (Date.now() > deadline) throw new Error(`nothing listened on ${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const version of ['send-proxy', 'send-proxy-v2'] as const) {
  test(`HAProxy (Debian) in front with ${version}: logs and allowClients see the real client (curl from 127.0.0.2)`, async (t) => {
    const origin = await startOrigin(t, (_req, res) => res.end('through haproxy'));
    // Only the real client may use the proxy, not the balancer: admission must see 127.0.0.2, not HAProxy's 127.0.0.1.
    const { port, clients } = await recordClients(t, ['127.0.0.1/32'], ['127.0.0.2/32']);
    const front = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'getaway-haproxy-'));
    const config = join(dir, 'haproxy.cfg');
    writeFileSync(config, [
      'global', '  log stderr format raw local0 warning',
      'defaults', '  mode tcp', '  timeout connect 5s', '  timeout client 30s', '  timeout server 30s',
      'frontend front', `  bind 127.0.0.1:${front}`, '  default_backend getaway',
      'backend getaway', `  server g1 127.0.0.1:${port} ${version}`, '',
    ].join('\n'));
    const haproxy = spawn('haproxy', ['-db', '-f', config], { stdio: 'pipe' });
    let stderr = '';
    haproxy.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    t.after(() => void haproxy.kill('SIGKILL'));
    await untilListening(front, 5000);
    const result = await curl(['-s', '--interface', '127.0.0.2', '-x', `http://127.0.0.1:${front}`, `${origin.url}/`], 5000);
    assert.equal(result.stdout, 'through haproxy', `${result.stderr} ${stderr}`);
    const client = clients.at(-1)!;
    assert.equal(client.remoteAddress, '127.0.0.2');
    assert.equal(client.proxyProtocol?.version, version === 'send-proxy' ? 1 : 2);
  });
}

for (const version of ['v1', 'v2'] as const) {
  test(`--upstream-proxy-protocol ${version}: an upstream (getaway accepting the header) sees each real client, for requests and tunnels`, async (t) => {
    const origin = await startOrigin(t, (_req, res) => res.end('ok'));
    const upstream = await recordClients(t, ['127.0.0.1/32']);
    const { url } = await startProxy(t, { upstreams: [`http://127.0.0.1:${upstream.port}`], upstreamProxyProtocol: version });
    for (const from of ['127.0.0.2', '127.0.0.3']) {
      assert.equal((await curl(['-s', '--interface', from, '-x', url, `${origin.url}/plain`])).stdout, 'ok', from);
      assert.equal((await curl(['-s', '--interface', from, '-p', '-x', url, `${origin.url}/tunnel`])).stdout, 'ok', from);
    }
    // One connection per client connection and kind: pooled connections never carry another client's requests.
    assert.deepEqual(upstream.clients.map((client) => client.remoteAddress), ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']);
    assert.ok(upstream.clients.every((client) => client.proxyProtocol?.version === (version === 'v1' ? 1 : 2)));
  });
}
