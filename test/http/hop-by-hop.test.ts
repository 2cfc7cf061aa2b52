import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeaderList } from '../../src/core/header-list.js';
import { requestedUpgrades, stripHopByHopHeaders } from '../../src/http/hop-by-hop.js';

const cases: Array<{ name: string; input: string[]; expected: string[] }> = [
  {
    name: 'the fixed list goes',
    input: ['Connection', 'keep-alive', 'Proxy-Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked',
      'Upgrade', 'h2c', 'Proxy-Authorization', 'Basic eDp5', 'Proxy-Authenticate', 'Basic', 'Trailer', 'X-T', 'Accept', '*/*'],
    expected: ['Accept', '*/*'],
  },
  {
    name: 'fields named in Connection go, in any case, across several Connection lines',
    input: ['Connection', 'X-One, x-TWO', 'connection', 'X-Three', 'X-One', '1', 'X-Two', '2', 'x-three', '3', 'X-Four', '4'],
    expected: ['X-Four', '4'],
  },
  {
    name: 'TE is removed but TE: trailers survives as exactly "trailers"',
    input: ['TE', 'gzip, trailers', 'Accept', '*/*'],
    expected: ['Accept', '*/*', 'TE', 'trailers'],
  },
  {
    name: 'TE without trailers goes',
    input: ['TE', 'gzip'],
    expected: [],
  },
  {
    name: 'httpoxy: a Proxy request header never leaves',
    input: ['Proxy', 'http://evil.test:1', 'Host', 'a'],
    expected: ['Host', 'a'],
  },
  {
    name: 'a Connection token cannot remove the framing or Host (request smuggling through Connection: content-length)',
    input: ['Host', 'a', 'Connection', 'Content-Length, host, X-Gone', 'Content-Length', '5', 'X-Gone', '1'],
    expected: ['Host', 'a', 'Content-Length', '5'],
  },
  {
    name: 'order, case and repeats of end-to-end fields survive',
    input: ['x-B', '1', 'Set-Cookie', 'a=1', 'X-a', '2', 'Set-Cookie', 'b=2'],
    expected: ['x-B', '1', 'Set-Cookie', 'a=1', 'X-a', '2', 'Set-Cookie', 'b=2'],
  },
];

for (const { name, input, expected } of cases) {
  test(`hop-by-hop: ${name}`, () => {
    const headers = new HeaderList(input);
    stripHopByHopHeaders(headers);
    assert.deepEqual(headers.toRaw(), expected);
  });
}

test('requestedUpgrades needs both Connection: upgrade and Upgrade', () => {
  assert.deepEqual(requestedUpgrades(new HeaderList(['Connection', 'keep-alive, Upgrade', 'Upgrade', 'websocket'])), ['websocket']);
  assert.deepEqual(requestedUpgrades(new HeaderList(['Upgrade', 'websocket'])), []);
  assert.deepEqual(requestedUpgrades(new HeaderList(['Connection', 'upgrade', 'Upgrade', 'h2c, WebSocket/13'])), ['h2c', 'websocket']);
});
