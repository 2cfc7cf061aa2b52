/**
 * `getaway warc index`: the CDXJ lines match the files: each line's offset and length cut out exactly the gzip
 * member of the response (or revisit) it names, with its URL, status, mime and payload digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createProxy } from '../../src/index.js';
import { warcArchiver } from '../../src/addons/warc-archiver.js';
import { startOrigin } from '../helpers/servers.js';
import { curl } from '../helpers/clients.js';
import { runCli } from '../helpers/cli-process.js';
import { readWarcDir, warcFilesIn } from '../helpers/warc-files.js';

test('the CDXJ index names every response and revisit at the offset and length where it sits', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'getaway-warc-index-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const origin = await startOrigin(t, (req, res) => {
    res.setHeader('Content-Type', req.url === '/page' ? 'text/html; charset=utf-8' : 'application/json');
    if (req.url === '/missing') res.statusCode = 404;
    res.end(req.url === '/page' ? '<p>page</p>' : req.url === '/missing' ? '{"error":404}' : '{"same":true}');
  });
  const archive = warcArchiver({ dir, dedup: true, rotateBytes: 2000 });
  const proxy = createProxy({ host: '127.0.0.1', port: 0, addons: [archive] });
  await proxy.listen();
  for (const path of ['/page', '/api', '/api', '/missing']) await curl(['-s', '-x', proxy.url, `${origin.url}${path}`]);
  await proxy.close();

  const files = await warcFilesIn(dir);
  assert.ok(files.length >= 2, 'several files, so offsets restart per file');
  const result = await runCli(['warc', 'index', ...files]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  assert.equal(lines.length, 4);
  const sorted = [...lines].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.deepEqual(lines, sorted, 'CDXJ is sorted');
  const records = await readWarcDir(dir);
  for (const line of lines) {
    const [urlkey, timestamp, json] = [line.slice(0, line.indexOf(' ')), line.split(' ')[1]!, line.slice(line.indexOf('{'))];
    const entry = JSON.parse(json) as Record<string, string>;
    assert.match(urlkey, /^[\d,]+:\d+\)\/(page|api|missing)$/, "SURT form (warcio reverses the host parts)");
    assert.match(timestamp, /^\d{14}$/);
    const file = files.find((f) => basename(f) === entry['filename'])!;
    const member = (await readFile(file)).subarray(Number(entry['offset']), Number(entry['offset']) + Number(entry['length']));
    const text = gunzipSync(member).toString('latin1');
    assert.match(text, new RegExp(`^WARC/1\\.1\\r\\nWARC-Type: (response|revisit)\\r\\n`));
    assert.ok(text.includes(`WARC-Target-URI: ${entry['url']}\r\n`));
    const record = records.find((r) => r.fields.get('warc-target-uri') === entry['url'] && text.includes(`WARC-Record-ID: ${r.fields.get('warc-record-id')}\r\n`))!;
    assert.ok(record, `a record for ${entry['url']}`);
    assert.equal(`sha1:${entry['digest']}`, record.fields.get('warc-payload-digest'));
    if (record.type === 'revisit') assert.equal(entry['mime'], 'warc/revisit');
    else assert.equal(entry['mime'], entry['url']!.endsWith('/page') ? 'text/html' : 'application/json');
    assert.equal(entry['status'], entry['url']!.endsWith('/missing') ? '404' : '200');
  }
  assert.equal(lines.filter((line) => line.includes('"warc/revisit"')).length, 1);
});

test('an unreadable file is a clear error with exit 2', async () => {
  const result = await runCli(['warc', 'index', '/nonexistent/file.warc.gz']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /\/nonexistent\/file\.warc\.gz: cannot be read/);
});
