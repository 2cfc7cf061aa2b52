/** WARC text: dates per version, digest labels, header folding, heads as exchanged, file name templates. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { formatDigest, formatRequestHead, formatResponseHead, formatWarcDate, formatWarcHeader } from '../../src/archive/warc-format.js';
import { renderFileName, templateProblem } from '../../src/archive/warc-file-name.js';

test('WARC-Date carries microseconds in 1.1 and whole seconds in 1.0', () => {
  const micros = Date.UTC(2026, 11, 2, 20, 54, 21, 123) * 1000 + 456;
  assert.equal(formatWarcDate(micros, '1.1'), '2026-12-02T20:54:21.123456Z');
  assert.equal(formatWarcDate(micros, '1.0'), '2026-12-02T20:54:21Z');
  assert.equal(formatWarcDate(Date.UTC(2026, 0, 1) * 1000 + 7, '1.1'), '2026-01-01T00:00:00.000007Z');
});

test('digests: sha1 in base32 (32 characters), sha256 in hex', () => {
  const sha1 = createHash('sha1').update('abc').digest();
  assert.equal(formatDigest('sha1', sha1), 'sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5');
  assert.equal(formatDigest('sha256', createHash('sha256').update('abc').digest()), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('a header value with a line break cannot end the header early', () => {
  assert.equal(formatWarcHeader('1.1', [['WARC-Target-URI', 'http://x/\r\nWARC-Type: evil']]).toString(), 'WARC/1.1\r\nWARC-Target-URI: http://x/ WARC-Type: evil\r\n\r\n');
});

test('HTTP heads keep order, case and repeats, and drop only Transfer-Encoding', () => {
  const head = formatResponseHead({ httpVersion: '1.1', status: 200, reason: 'OK', rawHeaders: ['Set-Cookie', 'a', 'transfer-encoding', 'chunked', 'set-cookie', 'b', 'X-UPPER', 'é'] });
  assert.deepEqual(head, Buffer.from('HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nset-cookie: b\r\nX-UPPER: é\r\n\r\n', 'latin1'));
  assert.equal(formatResponseHead({ httpVersion: '1.0', status: 204, reason: '', rawHeaders: [] }).toString(), 'HTTP/1.0 204\r\n\r\n');
  assert.equal(formatRequestHead({ method: 'POST', path: '/p?q', rawHeaders: ['Host', 'h'] }).toString(), 'POST /p?q HTTP/1.1\r\nHost: h\r\n\r\n');
});

test('file name templates must vary from file to file and name known parts only', () => {
  assert.equal(templateProblem('{prefix}-{timestamp}-{serial}-{pid}-{host}'), undefined);
  assert.match(templateProblem('{prefix}-{pid}')!, /must contain \{serial\}, \{timestamp\} or \{random\}/);
  assert.match(templateProblem('{prefix}-{serial}-{nope}')!, /unknown placeholder \{nope\}/);
  assert.match(templateProblem('../{serial}')!, /path separator/);
  assert.equal(renderFileName('{prefix}-{timestamp}-{serial}-{pid}-{host}', { prefix: 'crawl', epochMs: Date.UTC(2026, 11, 2, 1, 2, 3, 4), serial: 7, pid: 42, host: 'node_1/a' }), 'crawl-20261202010203004-00007-42-node-1-a');
});
