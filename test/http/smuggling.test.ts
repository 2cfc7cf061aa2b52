/**
 * Request smuggling and ambiguous framing: each vector is refused with 400 and a closed connection, or
 * normalised so that the origin sees exactly one unambiguous message. A recording origin proves what reached it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawConnect } from '../helpers/clients.js';
import { startRecordingOrigin } from '../helpers/recording-origin.js';
import { startProxy, waitFor } from '../helpers/servers.js';

const T = '__TARGET__';

const refused: Array<{ name: string; request: string }> = [
  { name: 'Content-Length with Transfer-Encoding (CL.TE)', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n` },
  { name: 'Transfer-Encoding with Content-Length (TE.CL)', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n` },
  { name: 'two differing Content-Length', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde` },
  { name: 'two equal Content-Length', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd` },
  { name: 'Content-Length as a list', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd` },
  { name: 'Content-Length with a sign', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd` },
  { name: 'Transfer-Encoding gzip alone', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcd` },
  { name: 'Transfer-Encoding with chunked not last', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n` },
  { name: 'Transfer-Encoding chunked twice', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` },
  { name: 'Transfer-Encoding xchunked', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n` },
  { name: 'Transfer-Encoding identity', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n` },
  { name: 'negative chunk size', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabcde\r\n0\r\n\r\n` },
  { name: 'overflowing chunk size', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nabcde\r\n0\r\n\r\n` },
  { name: 'control character in a chunk extension', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;\x01\r\nabcde\r\n0\r\n\r\n` },
  { name: 'bare LF in chunked framing', request: `POST ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nabcde\n0\n\n` },
  { name: 'obs-fold', request: `GET ${T}/ HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n` },
  { name: 'bare LF line endings', request: `GET ${T}/ HTTP/1.1\nHost: x\nX-A: a\n\n` },
  { name: 'bare CR line ending', request: `GET ${T}/ HTTP/1.1\rHost: x\r\n\r\n` },
  { name: 'whitespace before the colon', request: `GET ${T}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n` },
  { name: 'invalid header name', request: `GET ${T}/ HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n` },
  { name: 'NUL in a header value', request: `GET ${T}/ HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n` },
  { name: 'DEL in a header value', request: `GET ${T}/ HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n` },
  { name: 'leading whitespace on the first field line', request: `GET ${T}/ HTTP/1.1\r\n Host: x\r\n\r\n` },
  { name: 'a second Host', request: `GET ${T}/ HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n` },
  { name: 'HTTP/1.1 without Host', request: `GET ${T}/ HTTP/1.1\r\nX-A: a\r\n\r\n` },
  { name: 'space in the request target', request: `GET ${T}/a b HTTP/1.1\r\nHost: x\r\n\r\n` },
];

for (const vector of refused) {
  test(`smuggling: ${vector.name} → 400, connection closed, no byte reaches the origin`, async (t) => {
    const origin = await startRecordingOrigin(t);
    const { port, proxy } = await startProxy(t);
    const conn = await rawConnect(port);
    conn.socket.write(vector.request.replaceAll(T, `http://127.0.0.1:${origin.port}`));
    const text = (await conn.untilEnd()).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/, text);
    assert.match(text, /Proxy-Status: getaway; error=http_request_error/);
    assert.equal((text.match(/^HTTP\/1\.1 /gm) ?? []).length, 1, 'exactly one response, no smuggled second one');
    // Errors inside a chunked body surface after the head was accepted, so a connection may have been opened;
    // what matters is that not one byte of the message went through it.
    assert.equal(origin.received().join(''), '');
    await waitFor(() => proxy.connections === 0, 3000, 'the connection to be released');
  });
}

test('normalised: a chunk extension is dropped and the body re-chunked; the origin sees one clean message', async (t) => {
  const origin = await startRecordingOrigin(t);
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`POST http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nabcde\r\n0\r\n\r\n`);
  await conn.waitFor('\r\n\r\nok');
  conn.socket.destroy();
  const [received] = origin.received();
  assert.match(received!, /^POST \/ HTTP\/1\.1\r\n/);
  assert.equal((received!.match(/Transfer-Encoding/gi) ?? []).length, 1);
  assert.ok(received!.endsWith('\r\n\r\n5\r\nabcde\r\n0\r\n\r\n'), JSON.stringify(received));
  assert.doesNotMatch(received!, /ext=1/);
});

test('normalised: Host is taken from the absolute URI, whatever the client\'s Host said', async (t) => {
  const origin = await startRecordingOrigin(t);
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: internal.admin.example\r\n\r\n`);
  await conn.waitFor('\r\n\r\nok');
  conn.socket.destroy();
  const [received] = origin.received();
  assert.match(received!, new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${origin.port}\r\n`));
  assert.doesNotMatch(received!, /internal\.admin/);
});

test('HTTP/1.0 without Host is fine (Host is HTTP/1.1\'s rule) and gets Host from the URI', async (t) => {
  const origin = await startRecordingOrigin(t);
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.0\r\n\r\n`);
  await conn.waitFor('\r\n\r\nok');
  conn.socket.destroy();
  assert.match(origin.received()[0]!, new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${origin.port}\r\nVia: 1\\.0 getaway-[0-9a-f]{8}\r\n`));
});

const ambiguousResponses: Array<{ name: string; response: string; type: string }> = [
  { name: 'Content-Length with Transfer-Encoding', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', type: 'http_protocol_error' },
  { name: 'two differing Content-Length', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', type: 'http_protocol_error' },
  { name: 'Transfer-Encoding gzip (would reach the client undecoded)', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello', type: 'http_response_transfer_coding' },
  { name: 'chunked twice', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', type: 'http_response_transfer_coding' },
  { name: 'bare LF', response: 'HTTP/1.1 200 OK\nContent-Length: 5\n\nhello', type: 'http_protocol_error' },
  { name: 'obs-fold', response: 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 5\r\n\r\nhello', type: 'http_protocol_error' },
  { name: 'whitespace before the colon', response: 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello', type: 'http_protocol_error' },
  { name: 'four-digit status', response: 'HTTP/1.1 2000 OK\r\nContent-Length: 5\r\n\r\nhello', type: 'http_protocol_error' },
  { name: 'HTTP/0.9-style body without a status line', response: 'hello world\r\n', type: 'http_protocol_error' },
];

for (const vector of ambiguousResponses) {
  test(`ambiguous response: ${vector.name} → 502 ${vector.type}, not relayed`, async (t) => {
    const origin = await startRecordingOrigin(t, vector.response);
    const { port } = await startProxy(t);
    const conn = await rawConnect(port);
    conn.socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    const text = await conn.waitFor('\r\n\r\n');
    conn.socket.destroy();
    assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n/, text);
    assert.match(text, new RegExp(`Proxy-Status: getaway; error=${vector.type};`));
  });
}

/**
 * Connection tokens that name framing or routing fields: removing those fields as hop-by-hop would relay a body
 * without framing (the origin reads it as a second request no hook saw) or a request without Host. The message's
 * framing is what llhttp parsed, whatever the client's Connection header lists.
 */
const framingTokens: Array<{ name: string; request: string; body: string }> = [
  {
    name: 'Connection: content-length on a GET with a body that is a second request',
    request: `GET ${T}/first HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: 35\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n`,
    body: 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
  },
  {
    name: 'Connection: Content-Length, keep-alive (mixed case, in a list)',
    request: `POST ${T}/first HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 5\r\n\r\nhello`,
    body: 'hello',
  },
  {
    name: 'Connection: transfer-encoding on a chunked POST',
    request: `POST ${T}/first HTTP/1.1\r\nHost: x\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    body: '5\r\nhello\r\n0\r\n\r\n',
  },
];

for (const vector of framingTokens) {
  test(`smuggling: ${vector.name} → the origin gets one framed message`, async (t) => {
    const origin = await startRecordingOrigin(t);
    const { port } = await startProxy(t);
    const conn = await rawConnect(port);
    conn.socket.write(vector.request.replaceAll(T, `http://127.0.0.1:${origin.port}`));
    await conn.waitFor('\r\n\r\nok');
    conn.socket.destroy();
    const [received] = origin.received();
    const head = received!.slice(0, received!.indexOf('\r\n\r\n'));
    const body = received!.slice(head.length + 4);
    assert.match(head, /^(GET|POST) \/first HTTP\/1\.1\r\n/);
    assert.equal(body, vector.body, 'the body arrives as the body');
    const framing = head.match(/^(content-length|transfer-encoding):.*$/gim) ?? [];
    assert.equal(framing.length, 1, `exactly one framing field: ${JSON.stringify(head)}`);
    if (/^content-length/i.test(framing[0]!)) assert.equal(framing[0]!.split(':')[1]!.trim(), String(Buffer.byteLength(vector.body)));
    assert.equal(origin.received().length, 1, 'one connection, one request');
  });
}

test('smuggling: Connection: host does not remove Host', async (t) => {
  const origin = await startRecordingOrigin(t);
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\nConnection: host\r\n\r\n`);
  await conn.waitFor('\r\n\r\nok');
  conn.socket.destroy();
  assert.match(origin.received()[0]!, new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${origin.port}\r\n`));
});

test('smuggling: a hook that deletes or changes Content-Length cannot unframe the body', async (t) => {
  const origin = await startRecordingOrigin(t);
  const { port } = await startProxy(t, {
    addons: [{ name: 'reframer', requestHeaders(flow) {
      flow.request.headers.delete('content-length');
      flow.request.headers.append('X-Seen', 'yes');
    } }],
  });
  const conn = await rawConnect(port);
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
  conn.socket.write(`GET http://127.0.0.1:${origin.port}/first HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`);
  await conn.waitFor('\r\n\r\nok');
  conn.socket.destroy();
  const received = origin.received()[0]!;
  assert.match(received, new RegExp(`\r\nContent-Length: ${smuggled.length}\r\n`));
  assert.match(received, /\r\nX-Seen: yes\r\n/);
});

test('response: Connection: content-length from the origin keeps the response framed by its length', async (t) => {
  const origin = await startRecordingOrigin(t, 'HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\nok');
  const { port } = await startProxy(t);
  const conn = await rawConnect(port);
  conn.socket.write(`GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  const text = await conn.waitFor('\r\n\r\nok');
  conn.socket.destroy();
  assert.match(text, /\r\nContent-Length: 2\r\n/i);
  assert.doesNotMatch(text, /Transfer-Encoding/i);
});
