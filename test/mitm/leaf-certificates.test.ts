import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { chooseLeafNames } from '../../src/mitm/certificate-names.js';
import { LeafCertificates } from '../../src/mitm/leaf-certificates.js';
import { testGetawayCa } from '../helpers/getaway-ca.js';

test('names: SNI first, then the CONNECT host and origin names; IPs as IP SANs; long names drop the CN', () => {
  assert.deepEqual(chooseLeafNames({ sni: 'WWW.Example.test.', connectHost: 'example.test' }), {
    commonName: 'www.example.test',
    dnsNames: ['www.example.test', 'example.test'],
    ipAddresses: [],
  });
  assert.deepEqual(chooseLeafNames({ sni: undefined, connectHost: '192.0.2.1' }), { commonName: '192.0.2.1', dnsNames: [], ipAddresses: ['192.0.2.1'] });
  assert.deepEqual(chooseLeafNames({ sni: undefined, connectHost: '::1', originNames: ['a.test', 'a.test'] }), { commonName: '::1', dnsNames: ['a.test'], ipAddresses: ['::1'] });
  const long = `${'a'.repeat(60)}.example.test`;
  assert.equal(chooseLeafNames({ sni: long, connectHost: long }).commonName, undefined);
});

test('a leaf: signed by the CA, names as SANs, backdated, short-lived, ECDSA by default and RSA on request', async () => {
  const { ca } = await testGetawayCa();
  const leaves = new LeafCertificates(ca);
  const now = Date.now();
  const leaf = await leaves.get(chooseLeafNames({ sni: 'shop.example.test', connectHost: '192.0.2.7' }), 'ecdsa', now);
  const cert = new X509Certificate(leaf.certPem);
  const issuer = new X509Certificate(ca.certPem);
  assert.ok(cert.verify(issuer.publicKey), 'signed by the CA');
  assert.ok(cert.checkIssued(issuer));
  assert.equal(cert.subjectAltName, 'DNS:shop.example.test, IP Address:192.0.2.7');
  assert.equal(cert.subject, 'CN=shop.example.test');
  assert.equal(cert.ca, false);
  assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  assert.ok(now - from >= 2 * 86_400_000 - 2000 && now - from <= 2 * 86_400_000 + 2000, 'backdated 2 days');
  assert.ok(to - now <= 7 * 86_400_000 + 2000, 'valid 7 days at most');
  assert.ok(cert.keyUsage === undefined || cert.keyUsage.includes('1.3.6.1.5.5.7.3.1'), 'serverAuth');
  const rsa = await leaves.get(chooseLeafNames({ sni: 'shop.example.test', connectHost: '192.0.2.7' }), 'rsa', now);
  assert.equal(new X509Certificate(rsa.certPem).publicKey.asymmetricKeyType, 'rsa');
});

test('concurrent requests for one name share one mint; the cached leaf (and its serial) is reused', async () => {
  const { ca } = await testGetawayCa();
  const leaves = new LeafCertificates(ca);
  const names = chooseLeafNames({ sni: 'same.example.test', connectHost: 'same.example.test' });
  const results = await Promise.all(Array.from({ length: 20 }, () => leaves.get(names, 'ecdsa')));
  assert.equal(leaves.mintedCount, 1);
  assert.ok(results.every((r) => r === results[0]));
  const later = await leaves.get(names, 'ecdsa');
  assert.equal(new X509Certificate(later.certPem).serialNumber, new X509Certificate(results[0]!.certPem).serialNumber);
});

test('the cache is a bounded LRU and re-mints a leaf close to expiry', async () => {
  const { ca } = await testGetawayCa();
  const leaves = new LeafCertificates(ca, { maxEntries: 2, validityMs: 3 * 86_400_000 });
  const name = (host: string) => chooseLeafNames({ sni: host, connectHost: host });
  await leaves.get(name('a.test'), 'ecdsa');
  await leaves.get(name('b.test'), 'ecdsa');
  await leaves.get(name('a.test'), 'ecdsa'); // a is now most recent
  await leaves.get(name('c.test'), 'ecdsa'); // evicts b
  assert.equal(leaves.size, 2);
  assert.equal(leaves.mintedCount, 3);
  await leaves.get(name('a.test'), 'ecdsa');
  assert.equal(leaves.mintedCount, 3, 'a was kept');
  await leaves.get(name('b.test'), 'ecdsa');
  assert.equal(leaves.mintedCount, 4, 'b was evicted and minted again');
  await leaves.get(name('b.test'), 'ecdsa', Date.now() + 2.5 * 86_400_000);
  assert.equal(leaves.mintedCount, 5, 'renewed a day before expiry');
});
