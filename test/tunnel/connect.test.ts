import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { ProxyAgent, request as undiciRequest } from 'undici';
import { curl, rawConnect, runPython } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, startTlsOrigin, waitFor } from '../helpers/servers.js';
import { testCertificates } from '../helpers/test-ca.js';
import { assertCopiedBy, TUNNEL_COPIES, type TunnelCopy } from '../helpers/tunnel-copies.js';

const CONNECT_OK = 'HTTP/1.1 200 Connection Established\r\n\r\n';

test('curl --proxytunnel: plain HTTP through a CONNECT tunnel', async (t) => {
  const origin = await startOrigin(t, (req, res) => res.end(`tunnelled ${req.url}`));
  const { url } = await startProxy(t);
  const result = await curl(['-p', '-x', url, `${origin.url}/t`]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'tunnelled /t');
});

test('HTTPS origin behind CONNECT, verified against the test CA by curl, undici and Python requests', async (t) => {
  const certs = testCertificates();
  const origin = await startTlsOrigin(t, certs, (req, res) => res.end(`secure ${req.url}`));
  const { url } = await startProxy(t);

  const viaCurl = await curl(['--cacert', certs.caCertPath, '-x', url, `${origin.url}/curl`]);
  assert.equal(viaCurl.code, 0, viaCurl.stderr);
  assert.equal(viaCurl.stdout, 'secure /curl');

  const agent = new ProxyAgent({ uri: url, requestTls: { ca: certs.caCert } });
  t.after(() => agent.close());
  const res = await undiciRequest(`${origin.url}/undici`, { dispatcher: agent });
  assert.equal(await res.body.text(), 'secure /undici');

  const script = 'import sys, requests\nprint(requests.get(sys.argv[2], proxies={"https": sys.argv[1]}, verify=sys.argv[3], timeout=10).text)';
  const viaPython = await runPython(script, [url, `${origin.url}/python`, certs.caCertPath]);
  assert.equal(viaPython.code, 0, viaPython.stderr);
  assert.equal(viaPython.stdout, 'secure /python\n');

  // Without the CA the client refuses: verification really happens end to end, not in the proxy.
  const untrusted = await curl(['-x', url, `${origin.url}/nope`]);
  assert.equal(untrusted.code, 60, untrusted.stderr);
});

/** A proxy with tunnelIdleTimeoutMs = `idleMs` that records how each tunnel ended, and one open tunnel to `port`. */
async function tunnelWithIdleTimeout(t: TestContext, copy: TunnelCopy, port: number, idleMs: number) {
  const errors: string[] = [];
  const started = await startProxy(t, {
    ...copy.options,
    tunnelIdleTimeoutMs: idleMs,
    addons: [{ name: 'watch', tunnelClosed: (flow) => void errors.push(flow.error?.type ?? 'none') }],
  });
  const conn = await rawConnect(started.port);
  conn.socket.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await conn.waitFor(CONNECT_OK);
  return { started, conn, errors };
}

for (const copy of TUNNEL_COPIES) {
  test(`${copy.name}: half-close: the client ends its side, the server still answers, then both close`, async (t) => {
    let serverSawEnd = false;
    const echo = await startTcpServer(t, (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => {
        serverSawEnd = true;
        // Answer only after the client's FIN, as a request/response protocol over a half-closed socket does.
        setTimeout(() => socket.end(`got:${Buffer.concat(chunks).toString()}`), 50);
      });
    });
    const started = await startProxy(t, copy.options);
    const conn = await rawConnect(started.port);
    conn.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitFor(CONNECT_OK);
    conn.socket.end('ping');
    const all = (await conn.untilEnd()).toString();
    assert.equal(serverSawEnd, true);
    assert.equal(all, `${CONNECT_OK}got:ping`);
    assertCopiedBy(started.proxy, copy);
    await waitFor(() => started.proxy.connections === 0, 3000, 'both tunnel sockets to be released');
  });

  test(`${copy.name}: half-close the other way: the server ends first and keeps reading what the client still sends`, async (t) => {
    let received = '';
    let serverSocket: Socket | undefined;
    const server = await startTcpServer(t, (socket) => {
      serverSocket = socket;
      socket.end('bye-from-server');
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    });
    const started = await startProxy(t, copy.options);
    const conn = await rawConnect(started.port);
    conn.socket.write(`CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitFor('bye-from-server');
    await waitFor(() => conn.ended(), 3000, 'FIN from the server to arrive at the client');
    conn.socket.write('late data');
    await waitFor(() => received === 'late data', 3000, 'data after the server\'s FIN');
    conn.socket.end();
    await waitFor(() => serverSocket?.closed === true && started.proxy.connections === 0, 3000, 'everything closed');
    assertCopiedBy(started.proxy, copy);
  });

  test(`${copy.name}: bytes sent together with the CONNECT head are forwarded, not lost`, async (t) => {
    let received = '';
    const server = await startTcpServer(t, (socket) => {
      socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
      socket.on('end', () => socket.end());
    });
    const seen: Array<{ up: number; down: number }> = [];
    const started = await startProxy(t, {
      ...copy.options,
      addons: [{ name: 'bytes', tunnelClosed: (flow) => void seen.push({ up: flow.bytes.clientToServer, down: flow.bytes.serverToClient }) }],
    });
    const conn = await rawConnect(started.port);
    conn.socket.write(`CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\nHost: x\r\n\r\nEARLY-BYTES`);
    await conn.waitFor(CONNECT_OK);
    conn.socket.write('+more');
    await waitFor(() => received === 'EARLY-BYTES+more', 3000, 'early and later bytes at the server');
    conn.socket.destroy();
    await waitFor(() => seen.length === 1);
    assert.deepEqual(seen, [{ up: 16, down: 0 }]);
    assertCopiedBy(started.proxy, copy);
  });

  test(`${copy.name}: server-first protocols work: the banner arrives without the client sending anything`, async (t) => {
    const smtpLike = await startTcpServer(t, (socket) => {
      socket.write('220 ready\r\n');
      socket.on('end', () => socket.end());
    });
    const started = await startProxy(t, copy.options);
    const conn = await rawConnect(started.port);
    conn.socket.write(`CONNECT 127.0.0.1:${smtpLike.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const text = await conn.waitFor('220 ready\r\n');
    assert.equal(text, `${CONNECT_OK}220 ready\r\n`);
    assertCopiedBy(started.proxy, copy);
    conn.socket.destroy();
    await waitFor(() => started.proxy.connections === 0, 3000, 'sockets released after the client reset');
  });

  test(`${copy.name}: a tunnel idle longer than tunnelIdleTimeoutMs is closed on both sides`, async (t) => {
    let serverClosed = false;
    const server = await startTcpServer(t, (socket) => {
      socket.on('end', () => socket.end());
      socket.on('close', () => (serverClosed = true));
    });
    const { started, conn, errors } = await tunnelWithIdleTimeout(t, copy, server.port, 200);
    await conn.untilEnd(3000);
    await waitFor(() => serverClosed && errors.length === 1, 3000, 'the origin side to close');
    assert.deepEqual(errors, ['connection_read_timeout']);
    assert.equal(started.proxy.connections, 0);
    assertCopiedBy(started.proxy, copy);
  });

  test(`${copy.name}: a tunnel that carries a little traffic more often than tunnelIdleTimeoutMs stays open, then closes once silent`, async (t) => {
    const echo = await startTcpServer(t, (socket) => {
      socket.on('data', (chunk) => socket.write(chunk));
      socket.on('end', () => socket.end());
    });
    const { started, conn, errors } = await tunnelWithIdleTimeout(t, copy, echo.port, 200);
    // Ten bytes 80 ms apart: 800 ms of a tunnel that is never silent for 200 ms.
    for (let i = 0; i < 10; i++) {
      conn.socket.write(String(i));
      await new Promise((resolve) => setTimeout(resolve, 80));
    }
    assert.equal(conn.socket.destroyed, false);
    assert.deepEqual(errors, []);
    const text = (await conn.untilEnd(3000)).toString();
    assert.equal(text, `${CONNECT_OK}0123456789`);
    await waitFor(() => errors.length === 1, 3000, 'the tunnel to end');
    assert.deepEqual(errors, ['connection_read_timeout']);
    assertCopiedBy(started.proxy, copy);
  });

  test(`${copy.name}: a tunnel carries a large transfer both ways intact`, async (t) => {
    const size = 8 * 1024 * 1024;
    const echo = await startTcpServer(t, (socket) => socket.pipe(socket));
    const started = await startProxy(t, copy.options);
    const conn = await rawConnect(started.port);
    conn.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitFor(CONNECT_OK);
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 7) & 0xff;
    conn.socket.end(payload);
    const all = await conn.untilEnd(20_000);
    const echoed = all.subarray(CONNECT_OK.length);
    assert.equal(echoed.length, size);
    assert.ok(echoed.equals(payload));
    assertCopiedBy(started.proxy, copy);
  });
}

test('clients that honour http_proxy / HTTPS_PROXY use it without flags', async (t) => {
  const certs = testCertificates();
  const plain = await startOrigin(t, (_req, res) => res.end('plain via env'));
  const secure = await startTlsOrigin(t, certs, (_req, res) => res.end('secure via env'));
  const seen: string[] = [];
  const { url } = await startProxy(t, {
    addons: [
      { name: 'watch', requestHeaders: (flow) => void seen.push(`http ${flow.request.port}`), connect: (flow) => void seen.push(`connect ${flow.target.port}`) },
    ],
  });
  const env = { ...process.env, http_proxy: url, HTTPS_PROXY: url, NO_PROXY: '', no_proxy: '' };
  assert.equal((await curl([plain.url], 15_000, env)).stdout, 'plain via env');
  assert.equal((await curl(['--cacert', certs.caCertPath, secure.url], 15_000, env)).stdout, 'secure via env');
  assert.deepEqual(seen, [`http ${plain.port}`, `connect ${secure.port}`]);
});
