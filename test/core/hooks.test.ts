/** The library contract: what addons can do through hooks, checked end to end with real clients. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeaderList, type Addon, type Flow, type HttpFlow, type TunnelFlow } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';

test('requestHeaders can rewrite the outbound request, and headers it adds survive hop-by-hop stripping', async (t) => {
  let seen: { url?: string; header?: string | string[] } = {};
  const origin = await startOrigin(t, (req, res) => {
    seen = { url: req.url, header: req.headers['x-added'] };
    res.end('ok');
  });
  const addon: Addon = {
    name: 'rewrite',
    requestHeaders(flow) {
      flow.request.path = '/rewritten?by=hook';
      flow.request.headers.set('X-Added', 'yes');
      flow.request.headers.set('Connection', 'X-Added'); // would strip X-Added if stripping ran after hooks
    },
  };
  const { url } = await startProxy(t, { addons: [addon] });
  const result = await curl(['-x', url, `${origin.url}/original`]);
  assert.equal(result.stdout, 'ok');
  assert.deepEqual(seen, { url: '/rewritten?by=hook', header: 'yes' });
});

test('requestHeaders can send the request elsewhere by changing host and port', async (t) => {
  const real = await startOrigin(t, (_req, res) => res.end('real'));
  const { url } = await startProxy(t, {
    addons: [{ name: 'redirect', requestHeaders: (flow) => void (flow.request.port = real.port) }],
  });
  const result = await curl(['-x', url, 'http://127.0.0.1:1/']);
  assert.equal(result.stdout, 'real');
});

test('assigning flow.response answers from the proxy; the origin is never contacted', async (t) => {
  let originHits = 0;
  const origin = await startOrigin(t, (_req, res) => {
    originHits++;
    res.end('origin');
  });
  const addon: Addon = {
    name: 'reply',
    async requestHeaders(flow) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      flow.response = { status: 418, headers: new HeaderList(['Content-Type', 'text/plain', 'X-From', 'proxy']), body: 'short and stout' };
    },
  };
  const { url } = await startProxy(t, { addons: [addon] });
  const result = await curl(['-x', url, '-i', `${origin.url}/`]);
  assert.match(result.stdout, /^HTTP\/1\.1 418 I'm a Teapot\r\n/);
  assert.match(result.stdout, /X-From: proxy\r\n/);
  assert.match(result.stdout, /Content-Length: 15\r\n/);
  assert.ok(result.stdout.endsWith('short and stout'));
  assert.equal(originHits, 0);
});

test('responseHeaders can change the status and headers the client gets', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.writeHead(200, { 'X-Origin': '1' }).end('body'));
  const { url } = await startProxy(t, {
    addons: [
      {
        name: 'touch-response',
        responseHeaders(flow) {
          flow.response!.status = 203;
          flow.response!.headers.delete('x-origin');
          flow.response!.headers.append('X-Touched', 'yes');
        },
      },
    ],
  });
  const result = await curl(['-x', url, '-i', `${origin.url}/`]);
  assert.match(result.stdout, /^HTTP\/1\.1 203 /);
  assert.match(result.stdout, /X-Touched: yes/);
  assert.doesNotMatch(result.stdout, /X-Origin/);
});

test('each HTTP flow ends in exactly one of response or error, with its fields filled in', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    req.resume();
    req.on('end', () => res.end('0123456789'));
  });
  const ends: Array<{ hook: string; flow: Flow }> = [];
  const addon: Addon = {
    name: 'record',
    response: (flow) => void ends.push({ hook: 'response', flow }),
    error: (flow) => void ends.push({ hook: 'error', flow }),
  };
  const { url } = await startProxy(t, { addons: [addon] });
  await curl(['-x', url, '--data-binary', 'abcde', `${origin.url}/ok`]);
  await curl(['-x', url, 'http://127.0.0.1:1/refused']);
  await waitFor(() => ends.length === 2);
  const [ok, failed] = ends as [{ hook: string; flow: HttpFlow }, { hook: string; flow: HttpFlow }];
  assert.equal(ok.hook, 'response');
  assert.equal(ok.flow.response?.status, 200);
  assert.deepEqual(ok.flow.bytes, { requestBody: 5, responseBody: 10 });
  assert.equal(ok.flow.upstream, 'direct');
  assert.equal(ok.flow.clientRequest.method, 'POST');
  assert.equal(ok.flow.clientRequest.target, `${origin.url}/ok`);
  assert.match(ok.flow.clientRequest.headers.get('user-agent') ?? '', /^curl\//);
  assert.ok(ok.flow.timestamps.end! >= ok.flow.timestamps.responseHeaders! && ok.flow.timestamps.responseHeaders! >= ok.flow.timestamps.start);
  assert.equal(ok.flow.error, undefined);
  assert.equal(failed.hook, 'error');
  assert.equal(failed.flow.error?.type, 'connection_refused');
  assert.equal(failed.flow.response?.status, 502, 'the error response sent is recorded on the flow');
});

test('a throwing requestHeaders hook fails the flow closed: 500, origin not contacted, proxy still up', async (t) => {
  let originHits = 0;
  const origin = await startOrigin(t, (_req, res) => {
    originHits++;
    res.end('origin');
  });
  let fail = true;
  const { url } = await startProxy(t, {
    addons: [
      {
        name: 'fragile-policy',
        requestHeaders() {
          if (fail) throw new Error('policy database unavailable');
        },
      },
    ],
  });
  const result = await curl(['-x', url, '-i', `${origin.url}/`]);
  assert.match(result.stdout, /^HTTP\/1\.1 500 /);
  assert.match(result.stdout, /Proxy-Status: getaway; error=proxy_internal_error; details="addon \\"fragile-policy\\" failed in requestHeaders/);
  assert.equal(originHits, 0);
  fail = false;
  assert.equal((await curl(['-x', url, `${origin.url}/`])).stdout, 'origin');
});

test('flow.kill() in requestHeaders drops the connection without a response', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('origin'));
  const errors: string[] = [];
  const { port } = await startProxy(t, {
    addons: [{ name: 'killer', requestHeaders: (flow) => flow.kill(), error: (flow) => void errors.push(flow.error!.type) }],
  });
  const conn = await rawConnect(port);
  conn.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  const received = await conn.untilEnd();
  assert.equal(received.length, 0);
  await waitFor(() => errors.length === 1);
  assert.deepEqual(errors, ['proxy_internal_response']);
});

test('connect can deny a CONNECT (default 403 or a response of its own) and redirect another', async (t) => {
  const echo = await startTcpServer(t, (socket) => socket.pipe(socket));
  const flows: TunnelFlow[] = [];
  const addon: Addon = {
    name: 'tunnel-policy',
    connect(flow) {
      if (flow.target.host === 'blocked.test') flow.action = 'deny';
      else if (flow.target.host === 'custom.test') {
        flow.action = 'deny';
        flow.response = { status: 407, headers: new HeaderList(['Proxy-Authenticate', 'Basic realm="getaway"']), body: 'who are you?' };
      } else if (flow.target.host === 'echo.test') flow.target = { host: '127.0.0.1', port: echo.port };
    },
    error: (flow) => void (flow.kind === 'tunnel' && flows.push(flow)),
    tunnelClosed: (flow) => void flows.push(flow),
  };
  const started = await startProxy(t, { addons: [addon] });

  const blocked = await rawConnect(started.port);
  blocked.socket.write('CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test:443\r\n\r\n');
  const blockedText = (await blocked.untilEnd()).toString();
  assert.match(blockedText, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(blockedText, /Proxy-Status: getaway; error=http_request_denied/);

  const custom = await rawConnect(started.port);
  custom.socket.write('CONNECT custom.test:443 HTTP/1.1\r\nHost: custom.test:443\r\n\r\n');
  const customText = (await custom.untilEnd()).toString();
  assert.match(customText, /^HTTP\/1\.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="getaway"\r\n/);
  assert.ok(customText.endsWith('who are you?'));

  const redirected = await rawConnect(started.port);
  redirected.socket.write('CONNECT echo.test:7 HTTP/1.1\r\nHost: echo.test:7\r\n\r\n');
  await redirected.waitFor('200 Connection Established\r\n\r\n');
  redirected.socket.write('marco');
  await redirected.waitFor('marco');
  redirected.socket.end();
  await redirected.untilEnd();

  await waitFor(() => flows.length === 3, 3000, 'three tunnel flows to end');
  assert.deepEqual(
    flows.map((flow) => [flow.clientRequest.target, flow.error?.type ?? 'none', flow.error?.status ?? 200]),
    [['blocked.test:443', 'http_request_denied', 403], ['custom.test:443', 'http_request_denied', 407], ['echo.test:7', 'none', 200]],
  );
});

test('clientConnected can refuse a connection before any request on it is read', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('origin'));
  let refuse = true;
  const { url } = await startProxy(t, {
    addons: [
      {
        name: 'gate',
        async clientConnected(client) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          if (refuse && client.remoteAddress === '127.0.0.1') throw new Error('not on the list');
        },
      },
    ],
  });
  const refused = await curl(['-x', url, `${origin.url}/`]);
  assert.equal(refused.code, 52, `curl: empty reply expected, got ${refused.code} ${refused.stdout}`);
  refuse = false;
  assert.equal((await curl(['-x', url, `${origin.url}/`])).stdout, 'origin');
});

test('running and done bracket the proxy\'s life, with the context passed in', async (t) => {
  const events: string[] = [];
  const started = await startProxy(t, {
    addons: [
      {
        name: 'lifecycle',
        running: (context) => void events.push(`running:${context.options.port}`),
        done: () => void events.push('done'),
      },
    ],
  });
  assert.deepEqual(events, ['running:0']);
  await started.proxy.close();
  assert.deepEqual(events, ['running:0', 'done']);
});
