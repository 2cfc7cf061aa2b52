/**
 * WebSocket messages through the proxy are archived both ways, as a JSON-lines resource record beside the
 * handshake's response and request records (docs/warc.md, "WebSocket"). Real ws client and server, with
 * permessage-deflate on, so compressed messages are inflated before they are logged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { createProxy } from '../../src/index.js';
import { warcArchiver } from '../../src/addons/warc-archiver.js';
import { readWarcDir } from '../helpers/warc-files.js';

async function startEchoServer(t: TestContext): Promise<number> {
  const server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: true });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => {
      const text = data.toString();
      if (!isBinary && text === 'close please') socket.close(4000, 'bye');
      else socket.send(isBinary ? data : `echo: ${text}`, { binary: isBinary });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const client of wss.clients) client.terminate();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

/** A ws client speaking to the proxy in absolute form, the way a browser configured with an HTTP proxy does for ws://. */
function connectThrough(proxyPort: number, target: string): WebSocket {
  const url = new URL(target);
  return new WebSocket(`ws://127.0.0.1:${proxyPort}${url.pathname}`, {
    perMessageDeflate: true,
    headers: { Host: url.host },
    finishRequest: (request: ClientRequest) => {
      request.path = `http://${url.host}${url.pathname}`;
      request.end();
    },
  });
}

test('messages both ways, text, binary, compressed and the close, land in one JSON-lines resource record', async (t) => {
  const port = await startEchoServer(t);
  const dir = await mkdtemp(join(tmpdir(), 'getaway-warc-ws-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const archive = warcArchiver({ dir });
  const proxy = createProxy({ host: '127.0.0.1', port: 0, addons: [archive] });
  const { port: proxyPort } = await proxy.listen();
  const long = 'long message '.repeat(200);
  const ws = connectThrough(proxyPort, `ws://127.0.0.1:${port}/chat`);
  const received: string[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = (): Promise<void> => new Promise((resolve) => ws.once('message', (data) => (received.push(data.toString()), resolve())));
  ws.send('hello');
  await next();
  ws.send(long);
  await next();
  ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
  await next();
  ws.send('close please');
  assert.equal(await closed, 4000);
  assert.deepEqual(received.slice(0, 2), ['echo: hello', `echo: ${long}`]);
  await proxy.close();

  const records = await readWarcDir(dir);
  assert.deepEqual(records.map((r) => r.type), ['warcinfo', 'response', 'request', 'resource']);
  const [, response, request, resource] = records;
  const uri = `ws://127.0.0.1:${port}/chat`;
  for (const record of [response!, request!, resource!]) assert.equal(record.fields.get('warc-target-uri'), uri);
  assert.match(response!.httpStatusLine!, /^HTTP\/1\.1 101 /);
  assert.ok(response!.httpHeaders.some(([name, value]) => /^sec-websocket-extensions$/i.test(name) && value.includes('permessage-deflate')));
  assert.match(request!.httpStatusLine!, /^GET \/chat HTTP\/1\.1$/);
  assert.equal(resource!.fields.get('warc-concurrent-to'), response!.fields.get('warc-record-id'));
  assert.equal(resource!.fields.get('warc-resource-type'), 'websocket');
  assert.equal(resource!.fields.get('content-type'), 'application/jsonl');
  const entries = resource!.payload!.toString().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  const summary = entries.map((e) => `${e['type']} ${e['opcode']} ${e['encoding'] === 'base64' ? Buffer.from(String(e['payloadData']), 'base64').toString('hex') : String(e['payloadData']).slice(0, 20)}`);
  assert.deepEqual(summary, [
    'send 1 hello',
    'receive 1 echo: hello',
    `send 1 ${long.slice(0, 20)}`,
    `receive 1 echo: ${long.slice(0, 14)}`,
    'send 2 000102ff',
    'receive 2 000102ff',
    'send 1 close please',
    `receive 8 ${Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from('bye')]).toString('hex')}`,
    // The client answers the close with its own: ws echoes the code and the reason.
    `send 8 ${Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from('bye')]).toString('hex')}`,
  ]);
  assert.equal(entries[2]!['payloadData'], long, 'the compressed message is logged inflated');
  assert.equal(entries[0]!['mask'], true);
  assert.equal(entries[1]!['mask'], false);
  const close = entries.find((e) => e['type'] === 'receive' && e['opcode'] === 8)!;
  assert.equal(close['closeCode'], 4000);
  assert.equal(close['closeReason'], 'bye');
  assert.ok(entries.every((e, i) => i === 0 || (e['ts'] as number) >= (entries[i - 1]!['ts'] as number)));
});
