import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { test } from 'node:test';
import type { ClientInfo, Flow } from '../../src/index.js';
import { curl } from '../helpers/clients.js';
import { startOrigin, startProxy, waitFor } from '../helpers/servers.js';

test('getaway:client:connect, getaway:flow:start and getaway:flow:end are published', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const { url, proxy } = await startProxy(t);
  const seen: string[] = [];
  const onConnect = (message: unknown): void => void seen.push(`connect ${(message as { client: ClientInfo }).client.remoteAddress}`);
  const onStart = (message: unknown): void => void seen.push(`start ${(message as { flow: Flow }).flow.kind}`);
  const onEnd = (message: unknown): void => {
    const { flow } = message as { flow: Flow };
    seen.push(`end ${flow.kind === 'http' ? flow.response?.status : 'tunnel'}`);
  };
  diagnostics.subscribe('getaway:client:connect', onConnect);
  diagnostics.subscribe('getaway:flow:start', onStart);
  diagnostics.subscribe('getaway:flow:end', onEnd);
  t.after(() => {
    diagnostics.unsubscribe('getaway:client:connect', onConnect);
    diagnostics.unsubscribe('getaway:flow:start', onStart);
    diagnostics.unsubscribe('getaway:flow:end', onEnd);
  });
  assert.equal((await curl(['-x', url, origin.url])).stdout, 'ok');
  await waitFor(() => proxy.activeFlows === 0 && seen.length === 3);
  assert.deepEqual(seen, ['connect 127.0.0.1', 'start http', 'end 200']);
});
