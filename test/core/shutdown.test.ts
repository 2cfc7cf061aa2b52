import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TunnelFlow } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, startTcpServer, waitFor } from '../helpers/servers.js';

test('close(): in-flight requests finish, tunnels are cut after them, everything is released', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.write('a');
    setTimeout(() => res.end('b'), 300);
  });
  const echo = await startTcpServer(t, (socket) => {
    socket.pipe(socket);
  });
  const closedTunnels: TunnelFlow[] = [];
  const started = await startProxy(t, { addons: [{ name: 'watch', tunnelClosed: (flow) => void closedTunnels.push(flow) }] });

  const tunnel = await rawConnect(started.port);
  tunnel.socket.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await tunnel.waitFor('200 Connection Established');
  const request = await rawConnect(started.port);
  request.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  await request.waitFor('\r\n\r\n');

  const closing = started.proxy.close();
  // The tunnel is still up while the request is in flight.
  tunnel.socket.write('still-open');
  await tunnel.waitFor('still-open');
  const text = await request.waitFor('\r\n0\r\n\r\n');
  assert.match(text, /\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n$/);
  await closing;
  await request.untilEnd();
  await tunnel.untilEnd();
  assert.equal(closedTunnels.length, 1);
  assert.equal(closedTunnels[0]!.error?.type, 'connection_terminated');
  assert.equal(started.proxy.connections, 0);
  assert.equal(started.proxy.activeFlows, 0);
  const after = await curl(['-x', started.url, `${origin.url}/`]);
  assert.equal(after.code, 7, 'no longer listening');
});

test('close(): a request still running when the grace period ends is cut', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.write('partial');
  });
  const errors: string[] = [];
  const started = await startProxy(t, { shutdownGraceMs: 200, addons: [{ name: 'watch', error: (flow) => void errors.push(flow.error!.type) }] });
  const request = await rawConnect(started.port);
  request.socket.write(`GET ${origin.url}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
  await request.waitFor('partial');
  const before = Date.now();
  await started.proxy.close();
  assert.ok(Date.now() - before >= 150);
  await request.untilEnd();
  await waitFor(() => errors.length === 1);
  assert.equal(started.proxy.connections, 0);
});
