/**
 * Repairing a file left open: cut at every kind of place (inside a gzip member, inside a header, inside a block,
 * between records), the scan keeps exactly the complete records, and warcio reads the repaired file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { WarcWriter } from '../../src/archive/warc-writer.js';
import { bufferBlock, recordFromBuffer } from '../../src/archive/warc-record.js';
import { formatWarcDate, newRecordId, nowMicros } from '../../src/archive/warc-format.js';
import { repairOpenFile, scanWarcFile } from '../../src/archive/warc-repair.js';
import { readWarcFile } from '../helpers/warc-files.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'getaway-warc-repair-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a warcinfo and `count` resource records of varied sizes; returns the closed file's path. */
async function writeFile_(dir: string, gzip: boolean, count: number): Promise<string> {
  const writer = new WarcWriter({
    dir, prefix: 'test', nameTemplate: '{prefix}-{serial}', rotateBytes: 1e12, rotateAgeMs: undefined, gzip, gzipLevel: 6,
    version: '1.1', digest: 'sha1', info: [], software: 'test', backlogBytes: 1e9,
  });
  await writer.open();
  for (let i = 0; i < count; i += 1) {
    const body = Buffer.alloc(100 + i * 700, 65 + i);
    await writer.write([recordFromBuffer('1.1', [['WARC-Type', 'resource'], ['WARC-Record-ID', newRecordId()], ['WARC-Date', formatWarcDate(nowMicros(), '1.1')], ['WARC-Target-URI', `urn:test:${i}`]], 'text/plain', bufferBlock(body, 'sha1'))]);
  }
  await writer.close();
  const name = (await readdir(dir)).find((entry) => /\.warc(\.gz)?$/.test(entry))!;
  return join(dir, name);
}

for (const gzip of [true, false]) {
  test(`${gzip ? '.warc.gz' : '.warc'}: a file cut anywhere keeps exactly its complete records after repair`, async (t) => {
    const dir = await tempDir(t);
    const path = await writeFile_(dir, gzip, 5);
    const whole = await readFile(path);
    const full = await scanWarcFile(path);
    assert.equal(full.records, 6);
    assert.equal(full.completeBytes, whole.length);
    assert.equal(full.problem, undefined);
    assert.equal(full.info?.get('software'), 'test');
    // Record ends, to know how many records each cut must keep.
    const original = await readWarcFile(path);
    assert.equal(original.length, 6);
    const step = Math.max(1, Math.floor(whole.length / 60));
    for (let cut = 1; cut < whole.length; cut += step) {
      const open = join(dir, `cut-${cut}.warc${gzip ? '.gz' : ''}.open`);
      await writeFile(open, whole.subarray(0, cut));
      const scan = await scanWarcFile(open);
      assert.ok(scan.completeBytes <= cut);
      const result = await repairOpenFile(open, scan);
      if (result.closedAs === undefined) {
        assert.equal(scan.records, 0, `cut ${cut}`);
        continue;
      }
      const kept = await readWarcFile(result.closedAs);
      assert.equal(kept.length, scan.records, `cut ${cut}: warcio reads what the scan kept`);
      assert.deepEqual(kept.map((r) => r.fields.get('warc-record-id')), original.slice(0, kept.length).map((r) => r.fields.get('warc-record-id')));
      await rm(result.closedAs);
    }
  });
}

test('garbage after the last record is cut too', async (t) => {
  const dir = await tempDir(t);
  const path = await writeFile_(dir, true, 2);
  const open = `${path}.open`;
  const bytes = await readFile(path);
  await writeFile(open, Buffer.concat([bytes, Buffer.from('not a gzip member')]));
  const result = await repairOpenFile(open);
  assert.equal(result.records, 3);
  assert.equal(result.cutBytes, 'not a gzip member'.length);
});
