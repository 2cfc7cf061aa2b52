/**
 * Bounded fuzzing of request heads and bodies: a fixed seed, thousands of mutated requests, a few seconds.
 * The proxy must never crash, every answer must be a well-formed HTTP response or a closed connection, the
 * origin must never receive a request that no hook saw (smuggling), and the proxy must still serve afterwards
 * with nothing left open.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { curl } from '../helpers/clients.js';
import { startOrigin, startProxy, waitFor } from '../helpers/servers.js';

/** mulberry32: a tiny seeded PRNG, so a failure is reproducible from the seed and case number. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = ['\r\n', '\n', '\r', ':', ' ', '\t', '\0', '\x7f', '\xff', ',', ';', '0', '-', 'chunked', '\r\n\r\n',
  'Transfer-Encoding: chunked\r\n', 'Content-Length: 5\r\n', 'Host: x\r\n', 'Connection: Upgrade\r\nUpgrade: websocket\r\n',
  'Expect: 100-continue\r\n', '\r\n\r\nGET / HTTP/1.1\r\n', 'FFFFFFFFFFFFFFFF', '%00', '[::1]', ':0', ':65536', 'http://', '@',
  // Connection tokens that name framing and routing fields (hop-by-hop removal must not unframe a message).
  'Connection: content-length\r\n', 'Connection: Content-Length, keep-alive\r\n', 'Connection: transfer-encoding\r\n',
  'Connection: host\r\n', 'Connection: close\r\n', 'Connection: te, trailer, upgrade\r\n', ', content-length', ', host'];

function mutate(base: string, random: () => number): Buffer {
  let text = base;
  const rounds = 1 + Math.floor(random() * 4);
  for (let r = 0; r < rounds; r++) {
    const at = Math.floor(random() * (text.length + 1));
    const choice = random();
    if (choice < 0.3) {
      const piece = INTERESTING[Math.floor(random() * INTERESTING.length)]!;
      text = text.slice(0, at) + piece + text.slice(at);
    } else if (choice < 0.5) {
      text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 8));
    } else if (choice < 0.7) {
      text = text.slice(0, at) + String.fromCharCode(Math.floor(random() * 256)) + text.slice(at + 1);
    } else if (choice < 0.85) {
      const lines = text.split('\r\n');
      const line = Math.floor(random() * lines.length);
      lines.splice(line, 0, lines[line]!);
      text = lines.join('\r\n');
    } else {
      text = text.slice(0, at);
    }
  }
  return Buffer.from(text, 'latin1');
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A complete, parseable response head, or nothing at all. */
function checkAnswer(bytes: Buffer): string | undefined {
  if (bytes.length === 0) return undefined;
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return `incomplete response head: ${JSON.stringify(text.slice(0, 200))}`;
  const [statusLine, ...fields] = text.slice(0, end).split('\r\n');
  if (!/^HTTP\/1\.1 [1-5]\d\d [^\r\n]*$/.test(statusLine!)) return `bad status line: ${JSON.stringify(statusLine)}`;
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon <= 0 || !TOKEN.test(field.slice(0, colon)) || /[\0\r\n]/.test(field)) return `bad field line: ${JSON.stringify(field)}`;
  }
  return undefined;
}

function exchange(port: number, request: Buffer, limitMs: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(finish, limitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', finish);
    socket.on('error', finish);
    socket.end(request);
  });
}

const SEED = 20261122;
const CASES = 3000;
const CONCURRENCY = 32;

test(`fuzz: ${CASES} mutated requests (seed ${SEED}) never crash the proxy or get a malformed answer`, { timeout: 120_000 }, async (t) => {
  // Requests the origin received and requests the hooks saw, by "METHOD path": the first may never exceed the second.
  const reached = new Map<string, number>();
  const seen = new Map<string, number>();
  const count = (map: Map<string, number>, key: string): void => void map.set(key, (map.get(key) ?? 0) + 1);
  const origin = await startOrigin(t, (req, res) => {
    count(reached, `${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  // Tunnelled bytes reach their origin without a hook by design, so CONNECT cases aim at an origin of their own.
  const tunnelOrigin = await startOrigin(t, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const started = await startProxy(t, {
    connectTimeoutMs: 500,
    responseTimeoutMs: 1000,
    requestHeadersTimeoutMs: 1000,
    addons: [{ name: 'witness', requestHeaders: (flow) => count(seen, `${flow.request.method} ${flow.request.path}`) }],
  });
  const target = `127.0.0.1:${origin.port}`;
  const tunnelTarget = `127.0.0.1:${tunnelOrigin.port}`;
  const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${target}\r\n\r\n`;
  const templates = [
    `GET http://${target}/path?q=1 HTTP/1.1\r\nHost: ${target}\r\nAccept: */*\r\n\r\n`,
    `POST http://${target}/form HTTP/1.1\r\nHost: ${target}\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world`,
    `POST http://${target}/chunks HTTP/1.1\r\nHost: ${target}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    `CONNECT ${tunnelTarget} HTTP/1.1\r\nHost: ${tunnelTarget}\r\n\r\nGET / HTTP/1.1\r\nHost: ${tunnelTarget}\r\n\r\n`,
    `GET http://${target}/ws HTTP/1.1\r\nHost: ${target}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    `HEAD http://${target}/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`,
    `GET http://${target}/first HTTP/1.1\r\nHost: ${target}\r\nConnection: content-length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
  ];
  const random = createRandom(SEED);
  const cases = Array.from({ length: CASES }, (_, i) => ({ i, bytes: mutate(templates[i % templates.length]!, random) }));
  const failures: string[] = [];
  let answered = 0;
  let next = 0;
  const began = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cases.length) {
        const item = cases[next++]!;
        const answer = await exchange(started.port, item.bytes, 3000);
        if (answer.length > 0) answered++;
        const problem = checkAnswer(answer);
        if (problem !== undefined) failures.push(`case ${item.i} ${JSON.stringify(item.bytes.toString('latin1'))}: ${problem}`);
      }
    }),
  );
  const stats = started.proxy.stats();
  t.diagnostic(`${CASES} cases in ${Date.now() - began} ms, ${answered} answered; stats ${JSON.stringify(stats)}`);
  assert.deepEqual(failures.slice(0, 5), []);
  const unseen = [...reached].filter(([key, times]) => times > (seen.get(key) ?? 0)).map(([key, times]) => `${key} reached ${times}x, seen ${seen.get(key) ?? 0}x`);
  assert.deepEqual(unseen, [], 'the origin received requests that no hook saw');
  // The mutations must exercise both the refusal paths and the forwarding paths, or the run proved little.
  assert.ok(answered > CASES / 2, `only ${answered} answers`);
  assert.ok(stats.requestsRejected > CASES / 10 && stats.flowsCompleted > CASES / 20, JSON.stringify(stats));
  await waitFor(() => started.proxy.connections === 0, 10_000, `connections to drain (${started.proxy.connections} left)`);
  assert.equal((await curl(['-x', started.url, origin.url])).stdout, 'ok');
});
