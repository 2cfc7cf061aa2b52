import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfigFile, parseListen } from '../../src/config/config-file.js';
import { DEFAULT_OPTIONS, OptionsError, resolveProxyOptions, type ProxyOptions } from '../../src/config/options.js';

test('defaults fill in everything', () => {
  const resolved = resolveProxyOptions({});
  assert.equal(resolved.host, '127.0.0.1');
  assert.equal(resolved.port, 8080);
  assert.equal(resolved.connectTimeoutMs, DEFAULT_OPTIONS.connectTimeoutMs);
  assert.deepEqual(resolved.addons, []);
});

test('every problem is reported at once, naming the key and what was expected', () => {
  const bad = { port: 70000, connectTimeoutMs: 'soon', idleTimeoutMs: -1, colour: 'blue', addons: [{}] } as unknown as ProxyOptions;
  assert.throws(
    () => resolveProxyOptions(bad),
    (err: unknown) => {
      assert.ok(err instanceof OptionsError);
      assert.match(err.problems[0]!, /^options\.colour: unknown option \(known: host, port, explicit, transparent, addons, listeners, logger, connectTimeoutMs, .*maxTunnels, .*upstreams/);
      assert.deepEqual(err.problems.slice(1), [
        'options.port: expected an integer from 0 to 65535, got 70000',
        'options.addons[0]: expected an object with a string "name", got an object',
        'options.connectTimeoutMs: expected a positive integer number of milliseconds, got "soon"',
        'options.idleTimeoutMs: expected a positive integer number of milliseconds, got -1',
      ]);
      return true;
    },
  );
});

const listenCases = [
  { input: '127.0.0.1:8080', expected: { host: '127.0.0.1', port: 8080 } },
  { input: '0.0.0.0:0', expected: { host: '0.0.0.0', port: 0 } },
  { input: '[::1]:3128', expected: { host: '::1', port: 3128 } },
  { input: ':9000', expected: { port: 9000 } },
  { input: '9000', expected: { port: 9000 } },
  { input: 'localhost:1', expected: { host: 'localhost', port: 1 } },
];
for (const { input, expected } of listenCases) {
  test(`--listen ${input}`, () => assert.deepEqual(parseListen(input, '--listen'), expected));
}
for (const input of ['localhost', '127.0.0.1:99999', '::1:80', '', 'a:b']) {
  test(`--listen ${JSON.stringify(input)} is refused`, () => assert.throws(() => parseListen(input, '--listen'), /expected HOST:PORT/));
}

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'getaway-config-')), name);
  writeFileSync(path, text);
  return path;
}

test('kernelSplice is true unless turned off, in options and in a config file; anything but a boolean is named', async () => {
  assert.equal(resolveProxyOptions({}).kernelSplice, true);
  assert.equal(resolveProxyOptions({ kernelSplice: false }).kernelSplice, false);
  assert.throws(() => resolveProxyOptions({ kernelSplice: 'no' } as unknown as ProxyOptions), /options\.kernelSplice: expected true or false, got "no"/);
  assert.deepEqual(await loadConfigFile(tempFile('copy.yaml', 'kernelSplice: false\n')), { kernelSplice: false });
  await assert.rejects(loadConfigFile(tempFile('copy-bad.yaml', 'kernelSplice: 0\n')), /copy-bad\.yaml: kernelSplice: expected true or false, got 0/);
});

test('a YAML config file is read', async () => {
  const path = tempFile('getaway.yaml', 'listen: 127.0.0.1:0\nlogLevel: debug\nconnectTimeoutMs: 1500\n');
  assert.deepEqual(await loadConfigFile(path), { host: '127.0.0.1', port: 0, logLevel: 'debug', connectTimeoutMs: 1500 });
});

test('a JSON config file with mistakes names the file and each key', async () => {
  const path = tempFile('getaway.json', JSON.stringify({ listen: 'nowhere', connectTimeoutMs: 0, logLevel: 'loud', upstream: 'x' }));
  await assert.rejects(loadConfigFile(path), (err: unknown) => {
    assert.ok(err instanceof OptionsError);
    assert.equal(err.problems.length, 4);
    assert.match(err.problems[0]!, /getaway\.json: listen: expected HOST:PORT/);
    assert.match(err.problems[1]!, /connectTimeoutMs: expected a positive integer number of milliseconds, got 0/);
    assert.match(err.problems[2]!, /logLevel: expected one of fatal, error/);
    assert.match(err.problems[3]!, /unknown key "upstream"/);
    return true;
  });
});

test('a config file that is not valid YAML says so', async () => {
  const path = tempFile('bad.yml', 'listen: [unclosed\n');
  await assert.rejects(loadConfigFile(path), /bad\.yml: not valid YAML/);
});

test('a config file can turn interception on, and its mistakes are named', async () => {
  const ok = tempFile('mitm.yaml', 'mitm:\n  caDir: /tmp/some-ca\n  hosts: ["*.example.test"]\n  excludeHosts: ["bank.example.test"]\n');
  assert.deepEqual(await loadConfigFile(ok), { mitm: { caDir: '/tmp/some-ca', hosts: ['*.example.test'], excludeHosts: ['bank.example.test'] } });
  const bad = tempFile('bad-mitm.yaml', 'mitm:\n  hosts: ["exa mple"]\n  peekTimeoutMs: -5\n');
  await assert.rejects(loadConfigFile(bad), (err: unknown) => {
    assert.ok(err instanceof OptionsError);
    assert.match(err.problems.join('\n'), /bad-mitm\.yaml\.mitm\.hosts: bad host pattern "exa mple"/);
    assert.match(err.problems.join('\n'), /bad-mitm\.yaml\.mitm\.peekTimeoutMs: expected a positive integer number of milliseconds, got -5/);
    return true;
  });
});

test('admin in a config file: a port alone stays on loopback, a bad address is named', async () => {
  assert.deepEqual(await loadConfigFile(tempFile('admin.yaml', 'admin: 9090\n')), { admin: { host: '127.0.0.1', port: 9090 } });
  assert.deepEqual(await loadConfigFile(tempFile('admin6.yaml', "admin: '[::1]:0'\n")), { admin: { host: '::1', port: 0 } });
  await assert.rejects(loadConfigFile(tempFile('admin-bad.json', JSON.stringify({ admin: { port: 1 } }))), /admin-bad\.json: admin: expected "HOST:PORT"/);
});

test('upstream URLs are checked at start, the environment\'s too, and no message quotes their credentials', () => {
  const cases: Array<{ input: ProxyOptions; problem: RegExp }> = [
    { input: { upstreamEnv: { ALL_PROXY: 'socks4://user:pw-1@h:1080' } }, problem: /^options\.upstreamEnv: ALL_PROXY: "socks4:\/\/\*\*\*@h:1080": unsupported upstream scheme/ },
    { input: { upstreamEnv: { https_proxy: 'http://user:pw-1@h:1/path' } }, problem: /^options\.upstreamEnv: https_proxy: "http:\/\/\*\*\*@h:1\/path": an upstream proxy URL has no path/ },
    { input: { upstreams: ['ftp://user:pw-1@h:21'] }, problem: /^options\.upstreams\[0\]: "ftp:\/\/\*\*\*@h:21": unsupported upstream scheme/ },
    { input: { upstreams: ['http://us@er:pw@1@h:1:2'] }, problem: /^options\.upstreams\[0\]: "http:\/\/\*\*\*@h:1:2" is not a URL/ },
  ];
  for (const { input, problem } of cases) {
    assert.throws(
      () => resolveProxyOptions(input),
      (err: unknown) => {
        assert.ok(err instanceof OptionsError);
        assert.equal(err.problems.length, 1, err.message);
        assert.match(err.problems[0]!, problem);
        assert.doesNotMatch(err.message, /pw-1|us@er|er:pw/);
        return true;
      },
    );
  }
});
