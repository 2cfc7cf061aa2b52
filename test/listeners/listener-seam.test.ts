/**
 * The listener seam: a second listener, given in `listeners`, hands its connections to the same admission, hooks
 * and flows as the explicit proxy port. This one knows where its clients meant to connect (as a transparent
 * listener will) and who the real client is (as a PROXY protocol front will), and says so in its context.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { test } from 'node:test';
import type { AcceptConnection, ClientInfo, HttpFlow, Listener, ListenerContext } from '../../src/index.js';
import { curl, rawConnect } from '../helpers/clients.js';
import { startOrigin, startProxy, waitFor } from '../helpers/servers.js';

/** Accepts on 127.0.0.1:0 and reports every connection as meant for `destination`, from `client`. */
class FixedDestinationListener implements Listener {
  readonly name = 'fixed-destination';
  readonly #context: Omit<ListenerContext, 'listener'>;
  #server: Server | undefined;
  port = 0;

  constructor(context: Omit<ListenerContext, 'listener'>) {
    this.#context = context;
  }

  async listen(accept: AcceptConnection): Promise<AddressInfo> {
    this.#server = createServer({ allowHalfOpen: true }, (socket) => accept(socket, { listener: this.name, ...this.#context }));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address() as AddressInfo;
    this.port = address.port;
    return address;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

test('a second listener with a destination: origin-form requests go there, through the same hooks and flows', async (t) => {
  const received: Array<{ url: string | undefined; host: string | undefined }> = [];
  const origin = await startOrigin(t, (req, res) => {
    received.push({ url: req.url, host: req.headers.host });
    res.end('reached the destination');
  });
  const listener = new FixedDestinationListener({ destination: { host: '127.0.0.1', port: origin.port }, client: { address: '203.0.113.7', port: 4242 } });
  const admitted: ClientInfo[] = [];
  const flows: HttpFlow[] = [];
  const { url, proxy } = await startProxy(t, {
    listeners: [listener],
    addons: [{ name: 'watch', clientConnected: (client) => void admitted.push(client), response: (flow) => void flows.push(flow) }],
  });
  const conn = await rawConnect(listener.port);
  conn.socket.write('GET /hello?x=1 HTTP/1.1\r\nHost: anything.example\r\n\r\n');
  const text = await conn.waitFor('reached the destination');
  conn.socket.destroy();
  assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
  assert.deepEqual(received, [{ url: '/hello?x=1', host: 'anything.example' }]);
  await waitFor(() => flows.length === 1);
  const client = flows[0]!.client;
  assert.equal(client.listener, 'fixed-destination');
  assert.deepEqual(client.destination, { host: '127.0.0.1', port: origin.port });
  assert.equal(client.remoteAddress, '203.0.113.7', 'the context names the real client');
  assert.equal(client.remotePort, 4242);
  assert.equal(client.localPort, listener.port, 'the socket was asked for its local address');
  assert.deepEqual(admitted.map((c) => c.listener), ['fixed-destination']);
  // The explicit port is unaffected and records its own listener.
  assert.equal((await curl(['-x', url, `${origin.url}/explicit`])).stdout, 'reached the destination');
  await waitFor(() => flows.length === 2);
  assert.equal(flows[1]!.client.listener, 'explicit');
  assert.equal(flows[1]!.client.destination, undefined);
  await proxy.close();
  const refused = await new Promise<string>((resolve) => {
    const socket = connect({ port: listener.port, host: '127.0.0.1' });
    socket.once('connect', () => (socket.destroy(), resolve('connected')));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  assert.equal(refused, 'ECONNREFUSED', 'close() closed the second listener too');
});

test('admission is shared: caps count every listener, and clientConnected sees and can refuse a second listener\'s clients', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const capped = new FixedDestinationListener({ destination: { host: '127.0.0.1', port: origin.port } });
  const first = await startProxy(t, { listeners: [capped], maxConnections: 1 });
  const held = await rawConnect(first.port);
  t.after(() => held.socket.destroy());
  const over = await (await rawConnect(capped.port)).untilEnd();
  // A client with an original destination never spoke to a proxy, so the refusal is a close, not a 503.
  assert.equal(over.length, 0, 'one connection held on the explicit port fills the cap for both');
  assert.equal(first.proxy.stats().connectionsRefused, 1);

  const gated = new FixedDestinationListener({ destination: { host: '127.0.0.1', port: origin.port } });
  await startProxy(t, { listeners: [gated], addons: [{ name: 'gate', clientConnected(client) {
    if (client.listener === 'fixed-destination') throw new Error('not on this listener');
  } }] });
  const conn = await rawConnect(gated.port);
  conn.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await conn.untilEnd()).length, 0, 'closed before a byte was parsed or answered');
});

test('a listener that cannot bind stops listen() and leaves nothing open', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const taken = (blocker.address() as AddressInfo).port;
  const failing: Listener = {
    name: 'taken',
    listen: () => new Promise((_, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(taken, '127.0.0.1');
    }),
    close: () => Promise.resolve(),
  };
  const { createProxy } = await import('../../src/index.js');
  const proxy = createProxy({ host: '127.0.0.1', port: 0, listeners: [failing] });
  await assert.rejects(proxy.listen(), /EADDRINUSE/);
  assert.equal(proxy.address(), null, 'the explicit listener was closed again');
});
