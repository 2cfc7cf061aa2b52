import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { test } from 'node:test';
import { parseClientHello } from '../../src/mitm/client-hello.js';

/** The real ClientHello Node's TLS stack sends with these options, captured on a raw socket. */
async function captureHello(options: ConnectionOptions): Promise<Buffer> {
  let resolveBytes: (bytes: Buffer) => void = () => undefined;
  const captured = new Promise<Buffer>((resolve) => (resolveBytes = resolve));
  const server = createServer((socket: Socket) => {
    let bytes = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk]);
      if (bytes.length >= 5 && bytes.length >= 5 + bytes.readUInt16BE(3)) {
        resolveBytes(bytes);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ...options });
  client.on('error', () => undefined);
  const bytes = await captured;
  client.destroy();
  server.close();
  return bytes;
}

test('SNI, ALPN and ECDSA support are read from a real ClientHello', async () => {
  const bytes = await captureHello({ servername: 'www.example.test', ALPNProtocols: ['h2', 'http/1.1'] });
  assert.deepEqual(parseClientHello(bytes), { kind: 'tls', hello: { serverName: 'www.example.test', alpn: ['h2', 'http/1.1'], supportsEcdsa: true } });
});

test('a client that offers only RSA signature schemes is seen as not supporting ECDSA', async () => {
  const bytes = await captureHello({ servername: 'rsa.example.test', sigalgs: 'RSA-PSS+SHA256:RSA+SHA256' });
  const result = parseClientHello(bytes);
  assert.equal(result.kind, 'tls');
  assert.equal(result.kind === 'tls' && result.hello.supportsEcdsa, false);
});

test('no SNI for an IP target', async () => {
  const bytes = await captureHello({});
  const result = parseClientHello(bytes);
  assert.equal(result.kind === 'tls' && result.hello.serverName, undefined);
});

test('partial bytes are incomplete; a ClientHello split over two records is reassembled', async () => {
  const bytes = await captureHello({ servername: 'split.example.test' });
  for (const cut of [1, 3, 5, 40, bytes.length - 1]) assert.deepEqual(parseClientHello(bytes.subarray(0, cut)), { kind: 'incomplete' });
  const body = bytes.subarray(5);
  const half = Math.floor(body.length / 2);
  const record = (fragment: Buffer): Buffer => Buffer.concat([Buffer.from([22, 3, 1, fragment.length >> 8, fragment.length & 0xff]), fragment]);
  const split = Buffer.concat([record(body.subarray(0, half)), record(body.subarray(half))]);
  const result = parseClientHello(split);
  assert.equal(result.kind === 'tls' && result.hello.serverName, 'split.example.test');
});

for (const [name, bytes] of [
  ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
  ['SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')],
  ['a TLS alert, not a handshake', Buffer.from([21, 3, 3, 0, 2, 2, 40])],
  ['a handshake that is not a ClientHello', Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0])],
] as const) {
  test(`${name} is not TLS`, () => assert.deepEqual(parseClientHello(bytes), { kind: 'not-tls' }));
}

/**
 * A real ClientHello whose SNI bytes are replaced, same length, by `name` (Node would not send most of these): the
 * parser must report no SNI for anything that is not a valid DNS host name.
 */
async function helloWithServerName(name: string): Promise<Buffer> {
  const placeholder = 'p'.repeat(name.length);
  const bytes = await captureHello({ servername: placeholder });
  const at = bytes.indexOf(placeholder, 0, 'latin1');
  assert.notEqual(at, -1);
  bytes.write(name, at, 'latin1');
  return bytes;
}

for (const name of ['evil.example\r\nX-Injected: 1', 'has space.example', 'a..b.example', '.lead.example', 'trailing.dot.', '-hyphen.example',
  `${'x'.repeat(64)}.example`, `${'a'.repeat(63)}.`.repeat(3) + 'a'.repeat(62), '127.0.0.1', 'caf\xe9.example', 'nul\0.example', 'slash/.example', 'star*.example']) {
  test(`an SNI that is not a DNS host name (${JSON.stringify(name).slice(0, 40)}) counts as no SNI`, async () => {
    const result = parseClientHello(await helloWithServerName(name));
    assert.equal(result.kind, 'tls');
    assert.equal(result.kind === 'tls' && result.hello.serverName, undefined);
  });
}

for (const name of ['a.example', 'xn--caf-dma.example', 'under_score.example', `${'x'.repeat(63)}.example`, 'localhost', 'MiXeD.Example']) {
  test(`a valid SNI (${name.slice(0, 40)}) is kept`, async () => {
    const result = parseClientHello(await helloWithServerName(name));
    assert.equal(result.kind === 'tls' && result.hello.serverName, name);
  });
}
