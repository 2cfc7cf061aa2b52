import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { test } from 'node:test';
import { OptionsError, resolveProxyOptions, type AccessRule } from '../../src/index.js';
import { curl } from '../helpers/clients.js';
import { startOrigin, startProxy } from '../helpers/servers.js';
import { startCountingProxy } from '../helpers/upstream-proxies.js';

/** A resolver the test controls: names ending in .test resolve from the table, anything else fails. */
function resolverFor(table: Record<string, string>): LookupFunction {
  return ((hostname: string, options: { all?: boolean }, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
    const address = table[hostname];
    if (address === undefined) return callback(Object.assign(new Error(`no such name ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
    if (options.all) callback(null, [{ address, family: 4 }]);
    else callback(null, address, 4);
  }) as unknown as LookupFunction;
}

const code = async (args: string[]): Promise<string> => (await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args])).stdout;

test('rules: first match wins across users, host patterns, methods and ports; a refusal names its rule', async (t) => {
  const requests: string[] = [];
  const origin = await startOrigin(t, (req, res) => {
    requests.push(`${req.method} ${req.headers.host}${req.url}`);
    res.end('ok');
  });
  const accessRules: AccessRule[] = [
    { name: 'admins-anywhere', action: 'allow', users: ['root'] },
    { name: 'no-blocked', action: 'deny', hosts: ['*.blocked.test'] },
    { name: 'read-only', action: 'deny', methods: ['DELETE', 'PUT'] },
    { name: 'web-ports', action: 'deny', ports: '1-79' },
  ];
  const resolver = resolverFor({ 'www.blocked.test': '127.0.0.1', 'open.test': '127.0.0.1' });
  const { url } = await startProxy(t, { auth: { users: ['root:r', 'user:u'] }, accessRules, resolver });
  const blocked = await curl(['-s', '-i', '-x', url, '--proxy-user', 'user:u', `http://www.blocked.test:${origin.port}/`]);
  assert.match(blocked.stdout, /^HTTP\/1\.1 403 /);
  assert.match(blocked.stdout, /error=http_request_denied; details="GET www\.blocked\.test:\d+ denied by access rule \\"no-blocked\\""/);
  assert.equal(await code(['-x', url, '--proxy-user', 'root:r', `http://www.blocked.test:${origin.port}/`]), '200', 'the first rule lets root through');
  assert.equal(await code(['-x', url, '--proxy-user', 'user:u', '-X', 'DELETE', `http://open.test:${origin.port}/x`]), '403');
  assert.equal(await code(['-x', url, '--proxy-user', 'user:u', `http://open.test:${origin.port}/y`]), '200');
  assert.equal(await code(['-x', url, '--proxy-user', 'user:u', 'http://open.test:25/']), '403');
  assert.deepEqual(requests.map((line) => line.replace(/:\d+/, '')), ['GET www.blocked.test/', 'GET open.test/y']);
});

test('rules on destination CIDRs are decided on the address dialled, after DNS; tunnels too', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const resolver = resolverFor({ 'fine.test': '127.0.0.1', 'sneaky.test': '127.0.0.2' });
  const accessRules: AccessRule[] = [{ name: 'not-that-host', action: 'deny', destinations: ['127.0.0.2/32'] }];
  const { url } = await startProxy(t, { accessRules, resolver });
  assert.equal(await code(['-x', url, `http://fine.test:${origin.port}/`]), '200');
  // Nothing listens on 127.0.0.2: without the rule this would be a 502 connection_refused, not a 403.
  const refused = await curl(['-s', '-i', '-x', url, `http://sneaky.test:${origin.port}/`]);
  assert.match(refused.stdout, /^HTTP\/1\.1 403 [^]*denied by access rule \\"not-that-host\\"/);
  assert.equal(await code(['-p', '-x', url, `http://fine.test:${origin.port}/`]), '200');
  const tunnel = await curl(['-s', '-p', '-x', url, `http://sneaky.test:${origin.port}/`, '-o', '/dev/null', '-w', '%{http_connect}']);
  assert.equal(tunnel.stdout, '403');
});

test('an allowing rule can choose the route: one user through an upstream group, the rest direct', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const exit = await startCountingProxy(t);
  const { url } = await startProxy(t, {
    auth: { users: ['bob:b', 'alice:a'] },
    upstreams: [{ url: exit.url, group: 'exit' }],
    routes: [{ match: ['*'], via: 'direct' }],
    accessRules: [{ action: 'allow', users: ['bob'], via: 'exit' }],
  });
  assert.equal(await code(['-x', url, '--proxy-user', 'alice:a', `${origin.url}/alice`]), '200');
  assert.equal(await code(['-x', url, '--proxy-user', 'bob:b', `${origin.url}/bob`]), '200');
  assert.deepEqual(exit.requests.map((request) => request.slice(-4)), ['/bob']);
});

test('bad rules are refused at start, each problem named by position', () => {
  assert.throws(
    () => resolveProxyOptions({ accessRules: [{ action: 'maybe' }, { action: 'deny', clients: ['10.0.0.0/40'] }, { action: 'deny', destinations: ['10.0.0.0/8'], via: 'x' }, { action: 'allow', colour: 'red' }] as unknown as AccessRule[] }),
    (err: unknown) => {
      const text = (err as OptionsError).problems.join('\n');
      assert.match(text, /accessRules\[0\]: action: expected "allow" or "deny"/);
      assert.match(text, /accessRules\[1\]: clients: "10\.0\.0\.0\/40" is not an IP address or CIDR range/);
      assert.match(text, /accessRules\[2\]: via: only on an allowing rule without destinations/);
      assert.match(text, /accessRules\[3\]: unknown key "colour"/);
      return true;
    },
  );
});
