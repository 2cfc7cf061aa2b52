/**
 * The archiver end to end: real clients through a real proxy to real origins, the files read back with warcio,
 * digests recomputed, pairing and heads checked against what the origin sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TestContext } from 'node:test';
import { createProxy } from '../../src/index.js';
import { warcArchiver, type WarcArchiverOptions } from '../../src/addons/warc-archiver.js';
import { startOrigin, startTlsOrigin } from '../helpers/servers.js';
import { curl } from '../helpers/clients.js';
import { readWarcDir, warcFilesIn, type ReadRecord } from '../helpers/warc-files.js';
import { testCertificates } from '../helpers/test-ca.js';
import { testGetawayCa } from '../helpers/getaway-ca.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'getaway-warc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A proxy with an archiver; `finish()` closes it so every file is complete, then reads them all. */
async function archivingProxy(t: TestContext, options: Partial<WarcArchiverOptions> = {}, proxyOptions: Parameters<typeof createProxy>[0] = {}) {
  const dir = options.dir ?? (await tempDir(t));
  const archive = warcArchiver({ ...options, dir });
  await archive.open();
  const proxy = createProxy({ host: '127.0.0.1', port: 0, ...proxyOptions, addons: [archive] });
  await proxy.listen();
  let closed = false;
  t.after(() => (closed ? undefined : proxy.close()));
  return {
    dir,
    archive,
    proxy,
    url: proxy.url,
    async finish(): Promise<ReadRecord[]> {
      closed = true;
      await proxy.close();
      return readWarcDir(dir);
    },
  };
}

function field(record: ReadRecord, name: string): string | undefined {
  return record.fields.get(name.toLowerCase());
}

function byType(records: ReadRecord[], type: string): ReadRecord[] {
  return records.filter((record) => record.type === type);
}

test('a plain GET gives a warcinfo, then a response and a request record paired by id, with the heads as exchanged', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.setHeader('X-Mixed-Case', 'Yes');
    res.end('hello archive');
  });
  const archive = await archivingProxy(t);
  const result = await curl(['-s', '-x', archive.url, `${origin.url}/page?q=1`, '-H', 'X-Client: one']);
  assert.equal(result.stdout, 'hello archive');
  const records = await archive.finish();
  assert.deepEqual(records.map((r) => r.type), ['warcinfo', 'response', 'request']);
  const [info, response, request] = records as [ReadRecord, ReadRecord, ReadRecord];
  assert.match(info.payload!.toString(), /^software: getaway\/\d/m);
  assert.match(info.payload!.toString(), /^format: WARC File Format 1\.1$/m);
  assert.equal(field(info, 'WARC-Filename'), (await warcFilesIn(archive.dir)).map((f) => f.split('/').pop())[0]);
  const uri = `${origin.url}/page?q=1`;
  assert.equal(field(response, 'WARC-Target-URI'), uri);
  assert.equal(field(request, 'WARC-Target-URI'), uri);
  assert.equal(field(request, 'WARC-Concurrent-To'), field(response, 'WARC-Record-ID'));
  assert.equal(field(request, 'WARC-Date'), field(response, 'WARC-Date'));
  assert.match(field(response, 'WARC-Date')!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.equal(field(response, 'WARC-IP-Address'), '127.0.0.1');
  assert.equal(field(response, 'Content-Type'), 'application/http;msgtype=response');
  assert.match(field(response, 'WARC-Payload-Digest')!, /^sha1:[A-Z2-7]{32}$/);
  assert.equal(response.httpStatusLine, 'HTTP/1.1 200 OK');
  assert.deepEqual(response.httpHeaders.filter(([name]) => name === 'Set-Cookie'), [['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]);
  assert.ok(response.httpHeaders.some(([name, value]) => name === 'X-Mixed-Case' && value === 'Yes'));
  assert.equal(response.payload!.toString(), 'hello archive');
  assert.match(request.httpStatusLine!, /^GET \/page\?q=1 HTTP\/1\.1$/);
  assert.ok(request.httpHeaders.some(([name, value]) => name === 'X-Client' && value === 'one'));
  assert.ok(!request.httpHeaders.some(([name]) => /^proxy-/i.test(name)), 'hop-by-hop fields are not what the origin saw');
});

test('a chunked response is stored decoded, without Transfer-Encoding; gzip content coding is kept as sent', async (t) => {
  const body = Buffer.from('chunk one, chunk two, '.repeat(50));
  const zipped = gzipSync(body);
  const origin = await startOrigin(t, (req, res) => {
    if (req.url === '/gz') {
      res.setHeader('Content-Encoding', 'gzip');
      res.end(zipped);
      return;
    }
    res.write(body.subarray(0, 100));
    setTimeout(() => res.end(body.subarray(100)), 10);
  });
  const archive = await archivingProxy(t);
  await curl(['-s', '-x', archive.url, `${origin.url}/chunked`]);
  await curl(['-s', '-x', archive.url, `${origin.url}/gz`]);
  const responses = byType(await archive.finish(), 'response');
  const chunked = responses.find((r) => field(r, 'WARC-Target-URI')!.endsWith('/chunked'))!;
  assert.ok(!chunked.httpHeaders.some(([name]) => /^transfer-encoding$/i.test(name)));
  assert.deepEqual(chunked.payload, body);
  const gz = responses.find((r) => field(r, 'WARC-Target-URI')!.endsWith('/gz'))!;
  assert.ok(gz.httpHeaders.some(([name, value]) => name === 'Content-Encoding' && value === 'gzip'));
  assert.deepEqual(gz.payload, zipped);
});

test('HEAD and 304 responses are recorded with empty payloads; a POST body is in the request record', async (t) => {
  const origin = await startOrigin(t, (req, res) => {
    if (req.method === 'POST') {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => res.end(`got ${Buffer.concat(parts).length}`));
      return;
    }
    if (req.headers['if-none-match'] !== undefined) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.setHeader('Content-Length', '5');
    res.end(req.method === 'HEAD' ? undefined : 'hello');
  });
  const archive = await archivingProxy(t);
  await curl(['-s', '-I', '-x', archive.url, `${origin.url}/head`]);
  await curl(['-s', '-x', archive.url, `${origin.url}/etag`, '-H', 'If-None-Match: "x"']);
  await curl(['-s', '-x', archive.url, `${origin.url}/post`, '--data-binary', 'form=field&x=y']);
  const records = await archive.finish();
  const responses = byType(records, 'response');
  const head = responses.find((r) => field(r, 'WARC-Target-URI')!.endsWith('/head'))!;
  assert.equal(head.payloadLength, 0);
  assert.ok(head.httpHeaders.some(([name, value]) => name === 'Content-Length' && value === '5'));
  const notModified = responses.find((r) => field(r, 'WARC-Target-URI')!.endsWith('/etag'))!;
  assert.equal(notModified.httpStatusLine, 'HTTP/1.1 304 Not Modified');
  assert.equal(notModified.payloadLength, 0);
  const post = byType(records, 'request').find((r) => field(r, 'WARC-Target-URI')!.endsWith('/post'))!;
  assert.equal(post.payload!.toString(), 'form=field&x=y');
  assert.match(post.httpStatusLine!, /^POST \/post HTTP\/1\.1$/);
});

test('intercepted HTTPS is archived with https:// URIs, WARC-Protocol and WARC-Cipher-Suite', async (t) => {
  const certs = testCertificates();
  const ca = await testGetawayCa();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('secret page'));
  const archive = await archivingProxy(t, {}, { mitm: { caDir: ca.dir }, caBundle: [certs.caCert] });
  const result = await curl(['-s', '--cacert', ca.certPath, '-x', archive.url, `${origin.url}/s`]);
  assert.equal(result.stdout, 'secret page');
  const records = await archive.finish();
  const response = byType(records, 'response')[0]!;
  assert.equal(field(response, 'WARC-Target-URI'), `${origin.url}/s`);
  assert.equal(response.payload!.toString(), 'secret page');
  const protocols = response.allFields.filter(([name]) => name.toLowerCase() === 'warc-protocol').map(([, value]) => value).join(', ');
  assert.equal(protocols, field(response, 'WARC-Protocol'), `${JSON.stringify(response.allFields)}`);
  assert.match(protocols, /http\/1\.1/);
  assert.match(protocols, /tls\/1\.[23]/);
  assert.match(field(response, 'WARC-Cipher-Suite')!, /^TLS_/);
});

test('a plain CONNECT tunnel without interception writes no records', async (t) => {
  const certs = testCertificates();
  const origin = await startTlsOrigin(t, certs, (_req, res) => res.end('tunnelled'));
  const archive = await archivingProxy(t);
  const result = await curl(['-s', '--cacert', certs.caCertPath, '-x', archive.url, `${origin.url}/t`]);
  assert.equal(result.stdout, 'tunnelled');
  const records = await archive.finish();
  assert.deepEqual(records.map((r) => r.type), []);
});

test('WARC/1.0, sha256 digests, no gzip and a metadata record are options', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('options'));
  const archive = await archivingProxy(t, { warcVersion: '1.0', digest: 'sha256', gzip: false, metadata: true, info: { operator: 'tests@example.org' } });
  await curl(['-s', '-x', archive.url, `${origin.url}/o`]);
  const records = await archive.finish();
  const files = await warcFilesIn(archive.dir);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /\.warc$/);
  assert.deepEqual(records.map((r) => r.type), ['warcinfo', 'response', 'request', 'metadata']);
  const [info, response, , metadata] = records as [ReadRecord, ReadRecord, ReadRecord, ReadRecord];
  assert.match(info.payload!.toString(), /^operator: tests@example\.org$/m);
  assert.match(field(response, 'WARC-Date')!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(field(response, 'WARC-Payload-Digest'), `sha256:${createHash('sha256').update('options').digest('hex')}`);
  assert.equal(field(response, 'WARC-Protocol'), undefined, 'WARC-Protocol is a 1.1 field');
  assert.equal(field(metadata, 'WARC-Concurrent-To'), field(response, 'WARC-Record-ID'));
  assert.match(metadata.payload!.toString(), /^client-address: 127\.0\.0\.1:\d+$/m);
  assert.match(metadata.payload!.toString(), /^upstream: direct$/m);
});

test('each record is its own gzip member, and files rotate by size with a warcinfo at the start of each', async (t) => {
  // Random bytes, so gzip cannot shrink them below the rotation size.
  const { randomBytes } = await import('node:crypto');
  const origin = await startOrigin(t, (_req, res) => res.end(randomBytes(4000)));
  const archive = await archivingProxy(t, { rotateBytes: 6000 });
  for (let i = 0; i < 4; i += 1) await curl(['-s', '-x', archive.url, `${origin.url}/r${i}`]);
  await archive.finish();
  const files = await warcFilesIn(archive.dir);
  assert.ok(files.length >= 2, `rotated into ${files.length} files`);
  for (const file of files) {
    const { readWarcFile } = await import('../helpers/warc-files.js');
    const records = await readWarcFile(file);
    assert.equal(records[0]!.type, 'warcinfo');
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(file);
    let members = 0;
    for (let at = bytes.indexOf(Buffer.from([0x1f, 0x8b, 8])); at !== -1; at = bytes.indexOf(Buffer.from([0x1f, 0x8b, 8]), at + 1)) members += 1;
    assert.ok(members >= records.length, `${members} gzip members for ${records.length} records`);
  }
  assert.deepEqual((await readdir(archive.dir)).filter((name) => name.endsWith('.open')), []);
});

test('--warc-max-record-bytes cuts a long body and says WARC-Truncated: length', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end(Buffer.alloc(100_000, 7)));
  const archive = await archivingProxy(t, { maxRecordBytes: 10_000 });
  const result = await curl(['-s', '-o', '/dev/null', '-w', '%{size_download}', '-x', archive.url, `${origin.url}/big`]);
  assert.equal(result.stdout, '100000', 'the client still gets everything');
  const response = byType(await archive.finish(), 'response')[0]!;
  assert.equal(field(response, 'WARC-Truncated'), 'length');
  assert.equal(response.blockLength, 10_000);
});

test('a response that breaks mid-body is recorded as truncated, never as complete', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.setHeader('Content-Length', '10000');
    res.write(Buffer.alloc(3000, 1));
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const archive = await archivingProxy(t);
  await curl(['-s', '-x', archive.url, `${origin.url}/broken`]);
  const response = byType(await archive.finish(), 'response')[0];
  assert.ok(response, 'the partial response is kept');
  assert.equal(field(response, 'WARC-Truncated'), 'disconnect');
  assert.equal(response.payloadLength, 3000);
});
