/** Deduplication: a payload archived before becomes a revisit record, also after a restart (the index is on disk). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'getaway-warc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
import { createProxy } from '../../src/index.js';
import { warcArchiver } from '../../src/addons/warc-archiver.js';
import { startOrigin } from '../helpers/servers.js';
import { curl } from '../helpers/clients.js';
import { readWarcDir } from '../helpers/warc-files.js';

async function run(dir: string, urls: string[], maxEntries?: number): Promise<void> {
  const archive = warcArchiver({ dir, dedup: maxEntries === undefined ? true : { maxEntries } });
  await archive.open();
  const proxy = createProxy({ host: '127.0.0.1', port: 0, addons: [archive] });
  await proxy.listen();
  try {
    for (const url of urls) assert.equal((await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', proxy.url, url])).stdout, '200');
  } finally {
    await proxy.close();
  }
}

test('a repeated payload is a revisit record pointing at the first capture, across a restart', async (t) => {
  const origin = await startOrigin(t, (req, res) => res.end(req.url === '/other' ? 'another body' : 'the same body every time'));
  const dir = await tempDir(t);
  await run(dir, [`${origin.url}/a`, `${origin.url}/a`, `${origin.url}/other`]);
  await run(dir, [`${origin.url}/b`]);
  const records = (await readWarcDir(dir)).filter((r) => r.type === 'response' || r.type === 'revisit');
  assert.deepEqual(records.map((r) => `${r.type} ${r.fields.get('warc-target-uri')!.replace(origin.url, '')}`), ['response /a', 'revisit /a', 'response /other', 'revisit /b']);
  const first = records[0]!;
  for (const revisit of [records[1]!, records[3]!]) {
    assert.equal(revisit.fields.get('warc-profile'), 'http://netpreserve.org/warc/1.1/revisit/identical-payload-digest');
    assert.equal(revisit.fields.get('warc-refers-to-target-uri'), first.fields.get('warc-target-uri'));
    assert.equal(revisit.fields.get('warc-refers-to-date'), first.fields.get('warc-date'));
    assert.equal(revisit.fields.get('warc-refers-to'), first.fields.get('warc-record-id'));
    assert.equal(revisit.fields.get('warc-payload-digest'), first.fields.get('warc-payload-digest'));
    assert.equal(revisit.payloadLength, 0, 'a revisit holds the HTTP head only');
    assert.match(revisit.httpStatusLine!, /^HTTP\/1\.1 200/);
  }
});

test('the index is bounded: the least recently seen payload is forgotten first', async (t) => {
  const origin = await startOrigin(t, (req, res) => res.end(`body of ${req.url}`));
  const dir = await tempDir(t);
  await run(dir, [`${origin.url}/1`, `${origin.url}/2`, `${origin.url}/3`, `${origin.url}/1`], 2);
  const records = (await readWarcDir(dir)).filter((r) => r.type === 'response' || r.type === 'revisit');
  // /1 fell out when /3 came in (two entries), so its repeat is stored whole again.
  assert.deepEqual(records.map((r) => r.type), ['response', 'response', 'response', 'response']);
});
