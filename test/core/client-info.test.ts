/** ClientInfo: what the proxy knows of each client connection, read from the socket at accept. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientInfo } from '../../src/index.js';
import { rawConnect } from '../helpers/clients.js';
import { startProxy, waitFor } from '../helpers/servers.js';

for (const host of ['127.0.0.1', '0.0.0.0']) {
  test(`a proxy listening on ${host} reports each client's addresses and the local address it reached`, async (t) => {
    const seen: ClientInfo[] = [];
    const { port } = await startProxy(t, { host, addons: [{ name: 'record', clientConnected: (client) => void seen.push(client) }] });
    const first = await rawConnect(port);
    const second = await rawConnect(port);
    t.after(() => {
      first.socket.destroy();
      second.socket.destroy();
    });
    await waitFor(() => seen.length === 2, 3000, 'two clients');
    for (const [i, connection] of [first, second].entries()) {
      assert.equal(seen[i]!.remoteAddress, '127.0.0.1');
      assert.equal(seen[i]!.remotePort, connection.socket.localPort);
      assert.equal(seen[i]!.localAddress, '127.0.0.1');
      assert.equal(seen[i]!.localPort, port);
    }
    assert.ok(seen[1]!.id > seen[0]!.id);
  });
}
