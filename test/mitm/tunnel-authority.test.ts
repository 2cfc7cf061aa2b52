/**
 * Requests inside an intercepted tunnel are for the tunnel's authority only. The connect hook admitted
 * "CONNECT localhost:<port>"; a request inside it that names another authority (absolute form, or Host) would
 * bypass that decision, so it gets 421 Misdirected Request and no other origin is contacted.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { rawConnect } from '../helpers/clients.js';
import { testGetawayCa } from '../helpers/getaway-ca.js';
import type { HttpFlow } from '../../src/index.js';
import { startProxy, startTlsOrigin, waitFor } from '../helpers/servers.js';
import { testCertificates } from '../helpers/test-ca.js';

async function openInterceptedTunnel(proxyPort: number, authority: string, caPem: string): Promise<TLSSocket> {
  const conn = await rawConnect(proxyPort);
  conn.socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  await conn.waitFor('\r\n\r\n');
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket: conn.socket, servername: 'localhost', ca: caPem }, () => resolve(tls));
    tls.once('error', reject);
  });
}

function exchange(tls: TLSSocket, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no complete answer: ${JSON.stringify(text)}`)), 5000);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(text)?.[1];
      if (end !== -1 && length !== undefined && text.length >= end + 4 + Number(length)) {
        clearTimeout(timer);
        tls.removeListener('data', onData);
        resolve(text);
      }
    };
    tls.on('data', onData);
    tls.write(request);
  });
}

test('inside an intercepted tunnel, a request naming another authority gets 421 and reaches no origin', async (t) => {
  const certs = testCertificates();
  const { dir, certPath } = await testGetawayCa();
  const seen: string[] = [];
  const origin = await startTlsOrigin(t, certs, (req, res) => {
    seen.push(`${req.headers.host} ${req.url}`);
    res.end('admitted');
  });
  const elsewhere: string[] = [];
  const other = await startTlsOrigin(t, certs, (req, res) => {
    elsewhere.push(req.url ?? '');
    res.end('bypassed');
  });
  const admitted = `localhost:${origin.port}`;
  const served: HttpFlow[] = [];
  const { port } = await startProxy(t, {
    caBundle: [certs.caCert],
    mitm: { caDir: dir, peekTimeoutMs: 300 },
    // The policy under test: only the admitted authority may be reached.
    addons: [{ name: 'policy', connect(flow) {
      if (`${flow.target.host}:${flow.target.port}` !== admitted) flow.action = 'deny';
    }, response: (flow) => void served.push(flow) }],
  });
  const ca = readFileSync(certPath, 'utf8');

  const refused = [
    `GET https://localhost:${other.port}/abs HTTP/1.1\r\nHost: localhost:${other.port}\r\n\r\n`,
    `GET https://127.0.0.1:${origin.port}/abs HTTP/1.1\r\nHost: localhost:${origin.port}\r\n\r\n`,
    `GET /host HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n`,
    `GET /host HTTP/1.1\r\nHost: localhost:${other.port}\r\n\r\n`,
  ];
  // Each refusal closes its connection (Connection: close), so each gets a tunnel of its own.
  for (const request of refused) {
    const tls = await openInterceptedTunnel(port, admitted, ca);
    t.after(() => tls.destroy());
    const answer = await exchange(tls, request);
    assert.match(answer, /^HTTP\/1\.1 421 Misdirected Request\r\n/, `${JSON.stringify(request)} → ${answer}`);
    assert.match(answer, /Proxy-Status: getaway; error=http_request_denied; details=".* inside the tunnel to localhost:\d+"\r\n/);
  }
  const again = await openInterceptedTunnel(port, admitted, ca);
  t.after(() => again.destroy());
  assert.match(await exchange(again, `GET /origin-form HTTP/1.1\r\nHost: localhost:${origin.port}\r\n\r\n`), /\r\n\r\nadmitted$/);
  assert.match(await exchange(again, `GET https://localhost:${origin.port}/absolute HTTP/1.1\r\nHost: localhost:${origin.port}\r\n\r\n`), /\r\n\r\nadmitted$/);
  assert.match(await exchange(again, `GET /no-port HTTP/1.1\r\nHost: LOCALHOST\r\n\r\n`), /\r\n\r\nadmitted$/);
  assert.deepEqual(elsewhere, [], 'the other origin was reached');
  // The origin leg's TLS facts are on each decrypted flow (what an archive records as WARC-Cipher-Suite).
  await waitFor(() => served.length === 3);
  assert.match(served[0]!.upstreamConnection?.tls?.protocol ?? '', /^TLSv1\.[23]$/);
  assert.match(served[0]!.upstreamConnection?.tls?.cipher ?? '', /^TLS_|^ECDHE-/);
  assert.equal(served[0]!.upstreamConnection?.remotePort, origin.port);
  assert.deepEqual(seen, [`localhost:${origin.port} /origin-form`, `localhost:${origin.port} /absolute`, 'LOCALHOST /no-port']);
});
