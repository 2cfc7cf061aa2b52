/**
 * The flow log's hand-built line (writeFlowFields, used with createLogger's loggers) against what pino writes for
 * describeFlow's record: the same bytes, for crafted flows with every optional field and hostile strings, for
 * real flows (served, failed, tunnelled, authenticated) taken from a running proxy, and for a line longer than any
 * batch, written whole by itself.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFlow, flowMessage, writeFlowFields } from '../../src/addons/flow-log.js';
import { createLogger } from '../../src/log/create-logger.js';
import { jsonLineSink } from '../../src/log/json-lines.js';
import { LineBytes } from '../../src/log/line-bytes.js';
import type { Flow } from '../../src/index.js';
import { curl } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';

function pinoLine(flow: Flow, level: 'info' | 'warn'): string {
  let out = '';
  const logger = pino({ level: 'info', base: { pid: 42 }, timestamp: () => ',"time":7' }, new Writable({ write: (chunk: Buffer, _e, cb) => ((out += chunk.toString()), cb()) }));
  const record = describeFlow(flow);
  logger[level](record, flowMessage(record.method, record.target, record.status));
  return out;
}

const head = (level: 'info' | 'warn'): string => `{"level":${level === 'info' ? 30 : 40},"time":7,"pid":42`;

/** The line writeFlowFields writes in place after the same head, as a string. */
function inPlaceLine(flow: Flow, level: 'info' | 'warn'): string {
  const out = new LineBytes(Buffer.alloc(16384));
  out.ascii(head(level));
  writeFlowFields(out, flow);
  assert.equal(out.overflowed, false);
  return out.buffer.toString('utf8', 0, out.pos);
}

const hostile = ['plain', 'quote " and \\ backslash', 'ctl \u0000\u0001\u001f\u007f', 'é€😀', 'lone \ud800 and \udfff', 'line\u2028sep', ''];

test('writeFlowFields writes the bytes pino writes for describeFlow, for every field and hostile strings', () => {
  let checked = 0;
  for (const text of hostile) {
    const http = {
      id: '3b1f0c9e-0000-4000-8000-000000000001',
      kind: 'http',
      client: { remoteAddress: '::ffff:127.0.0.1', remotePort: 5, destination: { host: '2001:db8::1', port: 443 } },
      user: text,
      request: { method: `GET${text}`, scheme: 'http', host: 'example.test', port: 8080, path: `/p?q=${text}` },
      response: { status: 502 },
      bytes: { requestBody: 3, responseBody: 1_000_000_000_000 },
      timestamps: { start: 10, end: 25 },
      upstream: `http://up.test:3128 ${text}`,
      routeAttempts: [{ route: 'http://a:1', outcome: 'failed', reason: text }, { route: 'direct', outcome: 'served' }],
      error: { type: 'origin_unreachable', message: `connect ECONNREFUSED ${text}` },
    } as unknown as Flow;
    const tunnel = {
      id: '3b1f0c9e-0000-4000-8000-000000000002',
      kind: 'tunnel',
      client: { remoteAddress: '127.0.0.1', remotePort: 6, destination: undefined },
      user: undefined,
      target: { host: `host${text}`, port: 443 },
      response: undefined,
      bytes: { clientToServer: 0, serverToClient: 12 },
      timestamps: { start: 10, end: undefined },
      upstream: undefined,
      routeAttempts: [{ route: 'direct', outcome: 'served' }],
      error: undefined,
    } as unknown as Flow;
    // The target's other shapes: default ports (left out, so host and path meet), an IPv6 host, hostile ones.
    const httpsDefault = { ...http, request: { method: 'GET', scheme: 'https', host: `ex${text}`, port: 443, path: text } } as unknown as Flow;
    const v6 = { ...http, request: { method: 'GET', scheme: 'http', host: '2001:db8::1', port: 80, path: `/${text}` } } as unknown as Flow;
    for (const flow of [http, tunnel, httpsDefault, v6]) {
      for (const level of ['info', 'warn'] as const) {
        // pino writes a lone surrogate as is, which becomes U+FFFD in UTF-8; the hand-built line escapes it as
        // JSON.stringify does (\udXXX), keeping what was there. Both sides are compared with escapes as U+FFFD.
        const same = (line: string): string => line.replace(/"durationMs":\d+/, '"durationMs":0').replace(/\\ud[89a-f][0-9a-f]{2}/g, '\ufffd');
        const expected = same(Buffer.from(pinoLine(flow, level)).toString());
        const actual = same(inPlaceLine(flow, level));
        assert.equal(actual, expected, `for ${JSON.stringify(text)}`);
        JSON.parse(actual);
        checked++;
      }
    }
  }
  assert.equal(checked, hostile.length * 8);
});

test('real flows from a running proxy are written as pino writes them: served, failed, tunnelled', async (t) => {
  const flows: Flow[] = [];
  const origin = await startOrigin(t, (_req, res) => res.end('hello'));
  const closed = await startTcpServer(t, (socket) => socket.destroy());
  const { port } = await startProxy(t, {
    addons: [{ name: 'keep', response: (flow) => void flows.push(flow), tunnelClosed: (flow) => void flows.push(flow), error: (flow) => void flows.push(flow) }],
  });
  const proxy = `http://127.0.0.1:${port}`;
  await curl(['-s', '-x', proxy, `http://127.0.0.1:${origin.port}/path?x="y"`]);
  await curl(['-s', '-x', proxy, `http://127.0.0.1:${closed.port}/gone`]);
  await curl(['-s', '-p', '-x', proxy, `http://127.0.0.1:${origin.port}/through-tunnel`]);
  await waitFor(() => flows.length >= 3, 5000, `three flows (the request inside the tunnel is not seen), got ${flows.map((f) => f.kind).join(', ')}`);
  for (const flow of flows) {
    const level = flow.error !== undefined ? 'warn' : 'info';
    assert.equal(inPlaceLine(flow, level), pinoLine(flow, level));
  }
  assert.ok(flows.some((f) => f.kind === 'tunnel') && flows.some((f) => f.error !== undefined));
});

test('a line longer than any batch (a long URL) is written whole by itself, between the lines around it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-flow-log-'));
  try {
    // 4 KiB batches where workers share the output, 64 KiB otherwise: lines past each, and a multi-byte one.
    for (const [sharedOutput, pathLength] of [[true, 5000], [true, 200_000], [false, 100_000], [false, 70_000]] as const) {
      const path = join(dir, `log-${String(sharedOutput)}-${pathLength}`);
      const fd = openSync(path, 'w');
      const logger = createLogger({ level: 'info', pretty: false, sharedOutput, fd });
      const sink = jsonLineSink(logger)!;
      const flow = (path: string): Flow =>
        ({
          id: '3b1f0c9e-0000-4000-8000-000000000003',
          kind: 'http',
          client: { remoteAddress: '127.0.0.1', remotePort: 7, destination: undefined },
          user: undefined,
          request: { method: 'GET', scheme: 'http', host: 'example.test', port: 80, path },
          response: { status: 200 },
          bytes: { requestBody: 0, responseBody: 5 },
          timestamps: { start: 10, end: 12 },
          upstream: undefined,
          routeAttempts: [{ route: 'direct', outcome: 'served' }],
          error: undefined,
        }) as unknown as Flow;
      const long = pathLength === 70_000 ? `/${'é'.repeat(pathLength / 2)}` : `/${'x'.repeat(pathLength)}`;
      const flows = [flow('/before'), flow(long), flow('/after')];
      for (const f of flows) sink.writeInPlace('info', writeFlowFields, f);
      logger.flush();
      closeSync(fd);
      const normal = (line: string): string => line.replace(/"time":\d+/, '"time":7').replace(/,"pid":\d+/, '');
      const lines = readFileSync(path, 'utf8').split('\n');
      assert.equal(lines.length, 4, `three lines and the final newline (${String(sharedOutput)}, ${pathLength})`);
      for (const [i, f] of flows.entries()) assert.equal(normal(lines[i]!) + '\n', normal(pinoLine(f, 'info')), `line ${i} (${String(sharedOutput)}, ${pathLength})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
