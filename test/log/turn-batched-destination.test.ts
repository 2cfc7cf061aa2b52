import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { test } from 'node:test';
import { pino } from 'pino';
import { TurnBatchedDestination, type LineSink } from '../../src/log/turn-batched-destination.js';

function recordingSink(): LineSink & { chunks: string[]; syncFlushes: number } {
  const sink = {
    chunks: [] as string[],
    syncFlushes: 0,
    write(chunk: string) {
      sink.chunks.push(chunk);
    },
    flushSync() {
      sink.syncFlushes++;
    },
  };
  return sink;
}

test('lines logged in one turn of the event loop reach the sink as one write when the turn ends', async () => {
  const sink = recordingSink();
  const destination = new TurnBatchedDestination(sink);
  destination.write('a\n');
  destination.write('b\n');
  destination.write('c\n');
  assert.deepEqual(sink.chunks, [], 'nothing is written before the turn ends');
  await nextTurn();
  assert.deepEqual(sink.chunks, ['a\nb\nc\n']);
  destination.write('d\n');
  await nextTurn();
  assert.deepEqual(sink.chunks, ['a\nb\nc\n', 'd\n'], 'a later turn gets a write of its own');
});

test('a batch never exceeds maxWriteBytes except for a single longer line, and splits only between lines', async () => {
  const sink = recordingSink();
  const destination = new TurnBatchedDestination(sink, 100);
  const lines = ['x'.repeat(39) + '\n', 'y'.repeat(39) + '\n', 'z'.repeat(39) + '\n', 'L'.repeat(149) + '\n', 'é'.repeat(30) + '\n', 'é'.repeat(30) + '\n'];
  for (const line of lines) destination.write(line);
  await nextTurn();
  assert.equal(sink.chunks.join(''), lines.join(''), 'nothing lost or reordered');
  for (const chunk of sink.chunks) {
    assert.ok(chunk.endsWith('\n'), 'every write ends at a line boundary');
    assert.ok(Buffer.byteLength(chunk) <= 100 || chunk.split('\n').length === 2, `chunk of ${Buffer.byteLength(chunk)} bytes holds more than one line`);
  }
  // 80 bytes, then the 150-byte line alone, then 40 + 61 > 100 split the two-byte lines.
  assert.deepEqual(sink.chunks.map((chunk) => Buffer.byteLength(chunk)), [80, 40, 150, 61, 61]);
});

test('flushSync writes what the turn gathered at once, and the end of the turn then writes nothing twice', async () => {
  const sink = recordingSink();
  const destination = new TurnBatchedDestination(sink);
  destination.write('last words\n');
  destination.flushSync();
  assert.deepEqual(sink.chunks, ['last words\n']);
  assert.equal(sink.syncFlushes, 1);
  await nextTurn();
  assert.deepEqual(sink.chunks, ['last words\n']);
});

test('pino writes through it to a file, and logger.flush(callback) completes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'log.ndjson');
  const destination = new TurnBatchedDestination(pino.destination({ dest: file, sync: true }));
  const logger = pino({ base: undefined }, destination);
  for (let i = 0; i < 50; i++) logger.info({ i }, 'line');
  await new Promise<void>((resolve, reject) => logger.flush((err) => (err ? reject(err) : resolve())));
  const records = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { i: number });
  assert.deepEqual(records.map((record) => record.i), Array.from({ length: 50 }, (_, i) => i));
});

test('lines logged just before process.exit() are written, and an idle destination leaves no exit listener', async () => {
  const { execFile } = await import('node:child_process');
  const module = new URL('../../src/log/turn-batched-destination.js', import.meta.url).href;
  const script = `
import { pino } from 'pino';
const { TurnBatchedDestination } = await import(${JSON.stringify(module)});
const logger = pino({ base: undefined, timestamp: false }, new TurnBatchedDestination(pino.destination({ dest: 1, sync: true })));
logger.info('written in the last turn');
process.exit(0);
`;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('../../..', import.meta.url).pathname, timeout: 10_000 }, (err, out) => (err ? reject(err) : resolve(out))),
  );
  assert.match(stdout, /"msg":"written in the last turn"/);
  const sink = recordingSink();
  const listeners = process.listenerCount('exit');
  const destination = new TurnBatchedDestination(sink);
  destination.write('x\n');
  assert.equal(process.listenerCount('exit'), listeners + 1);
  await nextTurn();
  assert.equal(process.listenerCount('exit'), listeners);
});

test('lines logged after a write that reached maxWriteBytes still reach the sink on process.exit()', async () => {
  const { execFile } = await import('node:child_process');
  const module = new URL('../../src/log/turn-batched-destination.js', import.meta.url).href;
  const script = `
const { TurnBatchedDestination } = await import(${JSON.stringify(module)});
const destination = new TurnBatchedDestination({ write: (chunk) => process.stdout.write(chunk), flushSync() {} }, 10);
destination.write('first line\\n');
destination.write('second line\\n');
process.exit(0);
`;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 }, (err, out) => (err ? reject(err) : resolve(out))),
  );
  assert.equal(stdout, 'first line\nsecond line\n');
});
