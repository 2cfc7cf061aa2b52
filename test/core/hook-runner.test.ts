import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Addon } from '../../src/core/addon.js';
import { ProxyError } from '../../src/core/errors.js';
import { HookRunner } from '../../src/core/hook-runner.js';
import type { ClientInfo } from '../../src/core/connection.js';

const client: ClientInfo = { id: 1, remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, connectedAt: 0, listener: 'explicit', destination: undefined };

test('a hook nobody implements returns undefined synchronously', () => {
  const runner = new HookRunner([{ name: 'empty' }]);
  assert.equal(runner.has('clientConnected'), false);
  assert.equal(runner.run('clientConnected', client), undefined);
});

test('synchronous handlers run in order without a promise', () => {
  const order: string[] = [];
  const addons: Addon[] = [
    { name: 'a', clientConnected: () => void order.push('a') },
    { name: 'b', clientConnected: () => void order.push('b') },
  ];
  assert.equal(new HookRunner(addons).run('clientConnected', client), undefined);
  assert.deepEqual(order, ['a', 'b']);
});

test('an async handler makes the rest wait for it, in order', async () => {
  const order: string[] = [];
  const addons: Addon[] = [
    { name: 'a', clientConnected: () => void order.push('a') },
    {
      name: 'b',
      async clientConnected() {
        await new Promise((resolve) => setTimeout(resolve, 5));
        order.push('b');
      },
    },
    { name: 'c', clientConnected: () => void order.push('c') },
  ];
  const pending = new HookRunner(addons).run('clientConnected', client);
  assert.ok(pending instanceof Promise);
  assert.deepEqual(order, ['a']);
  await pending;
  assert.deepEqual(order, ['a', 'b', 'c']);
});

test('handlers are called with the addon as this', () => {
  const addon = {
    name: 'self',
    seen: undefined as unknown,
    clientConnected(this: { seen: unknown }) {
      this.seen = this;
    },
  };
  new HookRunner([addon]).run('clientConnected', client);
  assert.equal(addon.seen, addon);
});

for (const mode of ['throws', 'rejects'] as const) {
  test(`a handler that ${mode} becomes proxy_internal_error naming the addon, and later handlers do not run`, async () => {
    let laterRan = false;
    const addons: Addon[] = [
      {
        name: 'broken-policy',
        clientConnected: mode === 'throws' ? () => { throw new Error('boom'); } : async () => { throw new Error('boom'); },
      },
      { name: 'later', clientConnected: () => void (laterRan = true) },
    ];
    const runner = new HookRunner(addons);
    await assert.rejects(
      async () => runner.run('clientConnected', client),
      (err: unknown) => err instanceof ProxyError && err.type === 'proxy_internal_error' && /addon "broken-policy" failed in clientConnected: boom/.test(err.message),
    );
    assert.equal(laterRan, false);
  });
}
