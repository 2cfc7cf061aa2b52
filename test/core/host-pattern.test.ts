import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHostPattern } from '../../src/core/host-pattern.js';

const cases: Array<[pattern: string, host: string, port: number, matches: boolean]> = [
  ['*', 'anything.example', 80, true],
  ['example.com', 'example.com', 80, true],
  ['example.com', 'www.example.com', 443, true],
  ['example.com', 'notexample.com', 80, false],
  ['example.com', 'example.com.evil', 80, false],
  ['.example.com', 'example.com', 80, true],
  ['.example.com', 'a.b.example.com', 80, true],
  ['*.example.com', 'example.com', 80, false],
  ['*.example.com', 'x.example.com', 80, true],
  ['EXAMPLE.com', 'www.Example.COM', 80, true],
  ['example.com:8080', 'example.com', 8080, true],
  ['example.com:8080', 'example.com', 80, false],
  ['10.0.0.0/8', '10.1.2.3', 80, true],
  ['10.0.0.0/8', '11.0.0.1', 80, false],
  ['10.0.0.0/8', 'ten.example', 80, false],
  ['192.168.1.10', '192.168.1.10', 80, true],
  ['192.168.1.10', '192.168.1.11', 80, false],
  ['2001:db8::/32', '2001:db8:1::5', 443, true],
  ['2001:db8::/32', '2001:db9::5', 443, false],
  ['::1', '::1', 80, true],
  ['[::1]:8080', '::1', 8080, true],
  ['[::1]:8080', '::1', 80, false],
];

for (const [pattern, host, port, expected] of cases) {
  test(`pattern ${pattern} ${expected ? 'matches' : 'does not match'} ${host}:${port}`, () => {
    assert.equal(parseHostPattern(pattern).matches(host, port), expected);
  });
}

for (const bad of ['', '10.0.0.0/99', 'exa mple.com', 'example.com:http', '300.1.1.1/8']) {
  test(`pattern ${JSON.stringify(bad)} is refused`, () => assert.throws(() => parseHostPattern(bad)));
}
