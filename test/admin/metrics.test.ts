/** The metrics addon and the admin endpoint, with real clients: curl through the proxy, fetch for scrapes. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createAdminServer, metrics, registerProxyMetrics } from '../../src/metrics.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { CLI_PATH, startCliProxy } from '../helpers/cli-process.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';
import { startCountingProxy } from '../helpers/upstream-proxies.js';

/** Parses the Prometheus text format into `name{labels}` → value (label order as printed). */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

async function startAdmin(t: TestContext, registry: Registry): Promise<string> {
  const admin = createAdminServer({
    host: '127.0.0.1',
    port: 0,
    collect: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    logger: pino({ level: 'silent' }),
  });
  const { port } = await admin.listen();
  t.after(() => admin.close());
  return `http://127.0.0.1:${port}`;
}

test('flows, errors, status codes, bytes and durations are counted as the flows end', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('0123456789'));
  const echo = await startTcpServer(t, (socket) => socket.pipe(socket));
  const closed = await startTcpServer(t, (socket) => socket.destroy());
  closed.server.close(); // nothing listens there any more: connection refused
  const registry = new Registry();
  const { proxy, url } = await startProxy(t, { addons: [metrics({ registry })] });
  registerProxyMetrics(registry, proxy);
  const admin = await startAdmin(t, registry);

  for (let i = 0; i < 3; i++) assert.equal((await curl(['-x', url, `${origin.url}/${i}`])).stdout, '0123456789');
  assert.match((await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, `http://127.0.0.1:${closed.port}/`])).stdout, /^502$/);
  const tunnel = await rawConnect(proxy.address()!.port);
  tunnel.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
  await tunnel.waitFor('\r\n\r\n');
  tunnel.socket.write('hello');
  await tunnel.waitFor('hello');
  tunnel.socket.end();
  await waitFor(() => proxy.activeFlows === 0, 3000, 'the tunnel to end');

  const values = await scrape(admin);
  assert.equal(values.get('getaway_flows_total{kind="http",outcome="complete"}'), 3);
  assert.equal(values.get('getaway_flows_total{kind="http",outcome="error"}'), 1);
  assert.equal(values.get('getaway_flows_total{kind="tunnel",outcome="complete"}'), 1);
  assert.equal(values.get('getaway_flow_errors_total{type="connection_refused"}'), 1);
  // Three GETs and the CONNECT's "200 Connection Established"; the refused dial was answered 502 by the proxy.
  assert.equal(values.get('getaway_http_responses_total{code="200"}'), 4);
  assert.equal(values.get('getaway_http_responses_total{code="502"}'), 1);
  assert.equal(values.get('getaway_bytes_total{direction="origin_to_client"}'), 30 + 5);
  assert.equal(values.get('getaway_bytes_total{direction="client_to_origin"}'), 5);
  assert.equal(values.get('getaway_flow_duration_seconds_count{kind="http"}'), 4);
  assert.equal(values.get('getaway_flow_duration_seconds_count{kind="tunnel"}'), 1);
  assert.equal(values.get('getaway_connections_accepted_total'), 5);
  assert.equal(values.get('getaway_active_flows'), 0);
});

test('route attempts are counted per upstream: a failing one counts failed, the one that took over served', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('via the pool'));
  const broken = await startCountingProxy(t, { mode: 'connect-403' });
  const working = await startCountingProxy(t);
  const registry = new Registry();
  // primary-backup: the broken one is tried first (one failure does not open its circuit), so each flow fails
  // over once.
  const { proxy, url } = await startProxy(t, { upstreams: [broken.url, working.url], strategy: 'primary-backup', addons: [metrics({ registry })] });
  const admin = await startAdmin(t, registry);
  // -p: through a CONNECT tunnel, which an upstream answering 403 refuses without consuming anything.
  for (let i = 0; i < 2; i++) assert.equal((await curl(['-s', '-p', '-x', url, origin.url, '--max-time', '5'])).stdout, 'via the pool');
  // A tunnel's flow ends once both of its sides have closed, a moment after curl exits.
  await waitFor(() => proxy.activeFlows === 0, 3000, 'both tunnels to end');
  const values = await scrape(admin);
  assert.equal(values.get(`getaway_route_attempts_total{route="${broken.url}",outcome="failed"}`), 2, [...values.keys()].filter((k) => k.includes('route')).join(', '));
  assert.equal(values.get(`getaway_route_attempts_total{route="${working.url}",outcome="served"}`), 2);
  assert.equal(working.connects.length, 2);
});

test('the admin endpoint answers /healthz, refuses other paths and methods, and a scrape does not disturb the proxy', async (t) => {
  const registry = new Registry();
  const origin = await startOrigin(t, (_req, res) => res.end('still here'));
  const { url } = await startProxy(t, { addons: [metrics({ registry })] });
  const admin = await startAdmin(t, registry);
  assert.equal(await (await fetch(`${admin}/healthz`)).text(), 'ok\n');
  assert.equal((await fetch(`${admin}/`)).status, 404);
  assert.equal((await fetch(`${admin}/metrics`, { method: 'POST' })).status, 405);
  const head = await fetch(`${admin}/metrics`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'still here');
});

test('serve --admin: one process serves its metrics, Node process metrics included', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const cli = await startCliProxy(t, ['--admin', '127.0.0.1:0']);
  await waitFor(() => cli.lines.some((line) => typeof line['admin'] === 'string'), 5000, 'the admin line');
  const admin = cli.lines.find((line) => typeof line['admin'] === 'string')!['admin'] as string;
  for (let i = 0; i < 2; i++) assert.equal((await curl(['-x', cli.url, origin.url])).stdout, 'ok');
  const values = await scrape(admin);
  assert.equal(values.get('getaway_flows_total{kind="http",outcome="complete"}'), 2);
  assert.ok((values.get('process_resident_memory_bytes') ?? 0) > 0, 'default Node process metrics are there');
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});

for (const { flags, inKernel } of [{ flags: [], inKernel: 1 }, { flags: ['--no-kernel-splice'], inKernel: 0 }]) {
  test(`serve ${flags.join(' ') || '(default)'}: tunnels ${inKernel ? 'moved by the kernel' : 'copied in JavaScript'}, as /metrics counts them`, async (t) => {
    const origin = await startOrigin(t, (_req, res) => res.end('ok'));
    const cli = await startCliProxy(t, ['--admin', '127.0.0.1:0', ...flags]);
    await waitFor(() => cli.lines.some((line) => typeof line['admin'] === 'string'), 5000, 'the admin line');
    const admin = cli.lines.find((line) => typeof line['admin'] === 'string')!['admin'] as string;
    assert.equal((await curl(['-p', '-x', cli.url, origin.url])).stdout, 'ok');
    const values = await scrape(admin);
    assert.equal(values.get('getaway_tunnels_in_kernel_total'), inKernel);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
  });
}

test('serve --admin on a port already in use stops the start with exit 2, naming the admin endpoint', async (t) => {
  const taken = await startTcpServer(t, (socket) => socket.destroy());
  const child = spawn(process.execPath, [CLI_PATH, 'serve', '--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${taken.port}`], { stdio: 'pipe' });
  t.after(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 2);
  assert.match(stderr, /^getaway: cannot listen: admin endpoint: listen EADDRINUSE/);
});

test('serve --workers 2 --admin: the primary serves the sum of every worker\'s metrics', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const cli = await startCliProxy(t, ['--workers', '2', '--admin', '127.0.0.1:0']);
  await waitFor(() => cli.lines.some((line) => typeof line['admin'] === 'string'), 5000, 'the admin line');
  const admin = cli.lines.find((line) => typeof line['admin'] === 'string')!['admin'] as string;
  const requests = 24;
  // A connection each (curl runs once per request), so the kernel spreads them over both workers' accept queues.
  for (let i = 0; i < requests; i++) assert.equal((await curl(['-x', cli.url, `${origin.url}/${i}`])).stdout, 'ok');
  await waitFor(() => cli.lines.filter((line) => typeof line['flowId'] === 'string').length === requests, 5000, 'every flow line');
  const served = new Set(cli.lines.filter((line) => typeof line['flowId'] === 'string').map((line) => line['pid']));
  const values = await scrape(admin);
  assert.equal(values.get('getaway_flows_total{kind="http",outcome="complete"}'), requests, `summed over workers ${[...served].join(', ')}`);
  assert.equal(values.get('getaway_http_responses_total{code="200"}'), requests);
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});

for (const workers of [1, 2]) {
  test(`/readyz answers 200 while serving and 503 from SIGTERM on, while an in-flight request still finishes (--workers ${workers})`, { timeout: 30_000 }, async (t) => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const origin = await startOrigin(t, (req, res) => {
      if (req.url === '/slow') void held.then(() => res.end('finished'));
      else res.end('ok');
    });
    const cli = await startCliProxy(t, ['--admin', '127.0.0.1:0', '--shutdown-grace', '20000', ...(workers > 1 ? ['--workers', String(workers)] : [])]);
    await waitFor(() => cli.lines.some((line) => typeof line['admin'] === 'string'), 10_000, 'the admin line');
    const admin = cli.lines.find((line) => typeof line['admin'] === 'string')!['admin'] as string;
    const ready = await fetch(`${admin}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), 'ready\n');
    assert.equal((await curl(['-x', cli.url, origin.url])).stdout, 'ok');

    const slow = curl(['-x', cli.url, `${origin.url}/slow`]);
    // The request is in flight once the origin holds it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    cli.child.kill('SIGTERM');
    await waitFor(() => cli.lines.some((line) => String(line['msg']).startsWith('shutting down')), 5000, 'the shutdown line');
    const draining = await fetch(`${admin}/readyz`);
    assert.equal(draining.status, 503, 'a balancer stops sending new clients');
    assert.match(await draining.text(), /draining/);
    assert.equal((await fetch(`${admin}/healthz`)).status, 200, 'still alive while it drains');
    release();
    assert.equal((await slow).stdout, 'finished');
    assert.equal(await cli.exited, 0);
  });
}
