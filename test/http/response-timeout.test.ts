/**
 * responseTimeoutMs bounds origin silence, not the length of a response, also on pooled connections that
 * served requests before (where the agent keeps an idle timeout of its own).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { curl } from '../helpers/clients.js';
import { startOrigin, startProxy } from '../helpers/servers.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('an origin that trickles its body for longer than responseTimeoutMs, never silent for that long, is relayed whole', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(String(sent % 10));
      if (++sent === 10) {
        clearInterval(timer);
        res.end();
      }
    }, 80);
    res.on('close', () => clearInterval(timer));
  });
  const { url } = await startProxy(t, { responseTimeoutMs: 250 });
  const result = await curl(['-sS', '-x', url, '-w', '\n%{http_code}', `${origin.url}/slow`]);
  assert.equal(result.stdout, '0123456789\n200');
});

test('a request on a reused pooled connection still times out after responseTimeoutMs (504, http_response_timeout)', async (t) => {
  const connections = new Set<unknown>();
  const origin = await startOrigin(t, (req, res) => {
    connections.add(req.socket);
    if (req.url === '/hang') return; // never answers
    res.end('first');
  });
  const { url } = await startProxy(t, { responseTimeoutMs: 300 });
  assert.equal((await curl(['-sS', '-x', url, `${origin.url}/first`])).stdout, 'first');
  const started = Date.now();
  const result = await curl(['-sS', '-x', url, '-D', '-', '-o', '/dev/null', `${origin.url}/hang`]);
  assert.match(result.stdout, /^HTTP\/1\.1 504/);
  assert.match(result.stdout, /error=http_response_timeout/);
  assert.equal(connections.size, 1, 'the second request went over the pooled connection of the first');
  const waited = Date.now() - started;
  assert.ok(waited >= 290, `timed out after ${waited} ms, before responseTimeoutMs`);
});

test("a pooled connection's own idle timeout (4 s) does not cut a request whose origin is silent for longer", async (t) => {
  const connections = new Set<unknown>();
  const origin = await startOrigin(t, (req, res) => {
    connections.add(req.socket);
    if (req.url === '/first') {
      res.end('first');
      return;
    }
    void sleep(4500).then(() => res.end('late but fine'));
  });
  const { url } = await startProxy(t);
  assert.equal((await curl(['-sS', '-x', url, `${origin.url}/first`])).stdout, 'first');
  const result = await curl(['-sS', '-x', url, '-w', '\n%{http_code}', `${origin.url}/late`]);
  assert.equal(result.stdout, 'late but fine\n200');
  assert.equal(connections.size, 1, 'the second request went over the pooled connection of the first');
});
