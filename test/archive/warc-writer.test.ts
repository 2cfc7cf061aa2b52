/** The writer on its own: rotation by age, no empty files, records refused after close, small and large records mixed in order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { WarcWriter, type WarcWriterOptions } from '../../src/archive/warc-writer.js';
import { bufferBlock, recordFromBuffer } from '../../src/archive/warc-record.js';
import { formatWarcDate, newRecordId, nowMicros } from '../../src/archive/warc-format.js';
import { readWarcDir } from '../helpers/warc-files.js';
import { waitFor } from '../helpers/servers.js';

async function writer(t: TestContext, options: Partial<WarcWriterOptions> = {}): Promise<{ dir: string; writer: WarcWriter }> {
  const dir = await mkdtemp(join(tmpdir(), 'getaway-warc-writer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const w = new WarcWriter({
    dir, prefix: 'w', nameTemplate: '{prefix}-{serial}', rotateBytes: 1e12, rotateAgeMs: undefined, gzip: true, gzipLevel: 6,
    version: '1.1', digest: 'sha1', info: [], software: 'test', backlogBytes: 1e9, ...options,
  });
  await w.open();
  return { dir, writer: w };
}

function resource(body: Buffer, uri: string) {
  return recordFromBuffer('1.1', [['WARC-Type', 'resource'], ['WARC-Record-ID', newRecordId()], ['WARC-Date', formatWarcDate(nowMicros(), '1.1')], ['WARC-Target-URI', uri]], 'application/octet-stream', bufferBlock(body, 'sha1'));
}

test('a file open longer than rotateAgeMs is closed even when no more records come', async (t) => {
  const { dir, writer: w } = await writer(t, { rotateAgeMs: 100 });
  await w.write([resource(Buffer.from('aged'), 'urn:a')]);
  await waitFor(() => w.stats.filesClosed === 1, 3000, 'the age rotation');
  assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.open')), []);
  await w.close();
});

test('closing with nothing written leaves no file; writes after close are refused and counted', async (t) => {
  const { dir, writer: w } = await writer(t);
  await w.close();
  assert.deepEqual((await readdir(dir)).filter((name) => name !== '.spool'), []);
  await assert.rejects(w.write([resource(Buffer.from('late'), 'urn:late')]), /closed/);
  assert.equal(w.stats.recordsDropped, 1);
});

test('records of every size class keep their order: stored, gzipped on the spot, through the encoder, streamed', async (t) => {
  const { dir, writer: w } = await writer(t);
  const sizes = [10, 5000, 40_000, 300_000, 20, 2_000_000, 900, 70_000];
  const bodies = sizes.map((size, i) => (i % 2 === 0 ? Buffer.alloc(size, 65 + i) : randomBytes(size)));
  await Promise.all(bodies.map((body, i) => w.write([resource(body, `urn:${i}`)])));
  await w.close();
  const records = (await readWarcDir(dir)).filter((r) => r.type === 'resource');
  assert.deepEqual(records.map((r) => r.fields.get('warc-target-uri')), sizes.map((_, i) => `urn:${i}`));
  records.forEach((r, i) => assert.deepEqual(r.payload, bodies[i]));
  // A second reader: GNU gzip checks every member's deflate data, CRC-32 and length, the hand-made ones included.
  const [file] = (await readdir(dir)).filter((name) => name.endsWith('.warc.gz'));
  const check = spawnSync('gzip', ['-t', '-v', join(dir, file!)], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  const text = spawnSync('gzip', ['-dc', join(dir, file!)], { maxBuffer: 64 * 1024 * 1024 }).stdout as Buffer;
  assert.equal(text.toString('latin1').split('\r\nWARC-Type: ').length - 1, sizes.length + 1, 'one WARC record per member, warcinfo included');
});
