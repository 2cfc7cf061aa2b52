/**
 * kill -9 in the middle of writing a record, for real: the next start cuts the .open file back to its last
 * complete record, closes it, and every record written before the kill is still readable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCliProxy } from '../helpers/cli-process.js';
import { sendRepeated, startOrigin } from '../helpers/servers.js';
import { scanWarcFile } from '../../src/archive/warc-repair.js';
import { curl } from '../helpers/clients.js';
import { readWarcDir } from '../helpers/warc-files.js';
import { spawn } from 'node:child_process';

const BIG_BYTES = 96 * 1024 * 1024;

test('a process killed mid-write leaves a file the next start repairs, keeping every complete record', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'getaway-warc-crash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Incompressible and large, so writing its record (after it is spooled) takes long enough to be caught at.
  const block = randomBytes(4 * 1024 * 1024);
  const origin = await startOrigin(t, (req, res) => {
    if (req.url !== '/big') {
      res.end(`small ${req.url}`);
      return;
    }
    sendRepeated(res, block, BIG_BYTES);
  });
  const first = await startCliProxy(t, ['--warc', dir]);
  for (const path of ['/1', '/2', '/3']) assert.equal((await curl(['-s', '-x', first.url, `${origin.url}${path}`])).stdout, `small ${path}`);
  // Records are written in the background: wait until the open file holds the warcinfo and three exchanges.
  let openPath = '';
  const until = Date.now() + 10_000;
  for (;;) {
    const openName = (await readdir(dir)).find((name) => name.endsWith('.warc.gz.open'));
    if (openName !== undefined) {
      openPath = join(dir, openName);
      if ((await scanWarcFile(openPath)).records === 7) break;
    }
    if (Date.now() > until) throw new Error('the three exchanges never reached the file');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const sizeBefore = (await stat(openPath)).size;
  const download = spawn('curl', ['-s', '-o', '/dev/null', '-x', first.url, `${origin.url}/big`], { stdio: 'ignore' });
  t.after(() => download.kill('SIGKILL'));
  // Kill once the big record is partly in the file.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const size = (await stat(openPath)).size;
    if (size > sizeBefore + 1024 * 1024) break;
    if (Date.now() > deadline) throw new Error('the big record never started to be written');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  first.child.kill('SIGKILL');
  await first.exited;
  const sizeAtKill = (await stat(openPath)).size;
  assert.ok(sizeAtKill < sizeBefore + BIG_BYTES, 'killed before the record was complete');

  const second = await startCliProxy(t, ['--warc', dir]);
  const repaired = second.lines.find((line) => String(line['msg']).startsWith('closed a WARC file left open'));
  assert.ok(repaired, `the start reports the repair: ${JSON.stringify(second.lines)}`);
  assert.equal(repaired['records'], 7, 'warcinfo and three exchanges of two records');
  assert.ok((repaired['cutBytes'] as number) > 0);
  assert.equal(repaired['closedAs'], openPath.replace(/\.open$/, ''));
  second.child.kill('SIGTERM');
  await second.exited;
  const records = await readWarcDir(dir);
  assert.deepEqual(
    records.filter((r) => r.type === 'response').map((r) => r.payload!.toString()),
    ['small /1', 'small /2', 'small /3'],
  );
  assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.open')), []);
});
