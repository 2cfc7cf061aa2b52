import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeSelfAddresses, isSelfTarget } from '../../src/upstream/self-target.js';

const interfaces = ['127.0.0.1', '::1', '10.1.2.3', 'fe80::1'];

const cases = [
  { listen: '127.0.0.1', ip: '127.0.0.1', port: 8080, self: true },
  { listen: '127.0.0.1', ip: '::ffff:127.0.0.1', port: 8080, self: true },
  { listen: '127.0.0.1', ip: '127.0.0.1', port: 8081, self: false },
  { listen: '127.0.0.1', ip: '10.1.2.3', port: 8080, self: false },
  { listen: '127.0.0.1', ip: '0.0.0.0', port: 8080, self: true },
  { listen: '0.0.0.0', ip: '10.1.2.3', port: 8080, self: true },
  { listen: '0.0.0.0', ip: '127.0.0.53', port: 8080, self: true },
  { listen: '::', ip: '::1', port: 8080, self: true },
  { listen: '::', ip: 'FE80::1', port: 8080, self: true },
  { listen: '0.0.0.0', ip: '192.0.2.1', port: 8080, self: false },
  { listen: '::1', ip: '127.0.0.1', port: 8080, self: false },
  // IPv4-mapped IPv6 in every spelling reaches the IPv4 address.
  { listen: '127.0.0.1', ip: '::ffff:7f00:1', port: 8080, self: true },
  { listen: '127.0.0.1', ip: '0:0:0:0:0:ffff:127.0.0.1', port: 8080, self: true },
  { listen: '127.0.0.1', ip: '0000:0000:0000:0000:0000:FFFF:7F00:0001', port: 8080, self: true },
  { listen: '0.0.0.0', ip: '::ffff:7f00:35', port: 8080, self: true },
  { listen: '0.0.0.0', ip: '::ffff:0.0.0.0', port: 8080, self: true },
  { listen: '::', ip: '0:0:0:0:0:0:0:1', port: 8080, self: true },
  { listen: '::', ip: '0::0', port: 8080, self: true },
  { listen: '::1', ip: '0:0::1', port: 8080, self: true },
  { listen: '127.0.0.1', ip: '::ffff:7f00:2', port: 8080, self: false },
];

for (const c of cases) {
  test(`listening on ${c.listen}:8080, ${c.ip}:${c.port} is ${c.self ? '' : 'not '}self`, () => {
    assert.equal(isSelfTarget(c.ip, c.port, describeSelfAddresses(c.listen, 8080, interfaces)), c.self);
  });
}
