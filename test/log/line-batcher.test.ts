import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineBatcher } from '../../src/log/line-batcher.js';

function tempFile(t: TestContext): { path: string; fd: number } {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-lines-'));
  const path = join(dir, 'out.log');
  const fd = openSync(path, 'w');
  t.after(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return { path, fd };
}

/** Lines of one length, so that a write's size says whether it ended at a line's end. */
const line = (i: number): string => `{"n":"${String(i).padStart(3, '0')}","pad":"${'x'.repeat(90)}"}\n`;

test('the first line after a quiet spell is written at once; lines that follow go out together within the delay', async (t) => {
  const { path, fd } = tempFile(t);
  const batcher = new LineBatcher(fd, { maxDelayMs: 150 });
  t.after(() => batcher.close());
  batcher.write(line(0));
  assert.equal(readFileSync(path, 'utf8'), line(0));
  batcher.write(line(1));
  batcher.write(line(2));
  assert.equal(readFileSync(path, 'utf8'), line(0), 'held for the batch');
  await sleep(400);
  assert.equal(readFileSync(path, 'utf8'), line(0) + line(1) + line(2));
});

test('a batch is written before it would pass maxBytes, so every write ends at the end of a line', async (t) => {
  const { path, fd } = tempFile(t);
  const batcher = new LineBatcher(fd, { maxBytes: 1000, maxDelayMs: 60_000 });
  t.after(() => batcher.close());
  batcher.write(line(0));
  const sizes: number[] = [];
  let before = readFileSync(path).length;
  for (let i = 1; i <= 40; i++) {
    batcher.write(line(i));
    const now = readFileSync(path).length;
    if (now !== before) sizes.push(now - before);
    before = now;
  }
  assert.ok(sizes.length >= 3, `several batches: ${sizes.join(', ')}`);
  for (const size of sizes) {
    assert.ok(size <= 1000, `batch of ${size} bytes`);
    assert.equal(size % line(1).length, 0, 'whole lines only');
  }
  batcher.flush();
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
  assert.deepEqual(lines.map((l) => Number((JSON.parse(l) as { n: string }).n)), Array.from({ length: 41 }, (_, i) => i));
});

test('multi-byte characters are counted as bytes, and a line longer than a batch is written by itself', async (t) => {
  const { path, fd } = tempFile(t);
  const batcher = new LineBatcher(fd, { maxBytes: 256, maxDelayMs: 60_000 });
  t.after(() => batcher.close());
  batcher.write('first\n');
  const wide = `${'é€😀'.repeat(30)}\n`; // 270 bytes in 121 UTF-16 units
  const long = `${'y'.repeat(600)}\n`;
  batcher.write(wide);
  batcher.write(long);
  batcher.write('last\n');
  batcher.flush();
  assert.equal(readFileSync(path, 'utf8'), `first\n${wide}${long}last\n`);
});

/** Writes `text` in place, as the flow log does, through beginLine() and finishLine(), with its one retry. */
function writeInPlace(batcher: LineBatcher, text: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    batcher.beginLine().utf8(text);
    const result = batcher.finishLine();
    if (result !== 'retry') return result === 'written';
  }
  return false;
}

test('a line written in place goes out whole: after the pending lines when it does not fit behind them, by writeLine() when it fits no batch', async (t) => {
  const { path, fd } = tempFile(t);
  const batcher = new LineBatcher(fd, { maxBytes: 256, maxDelayMs: 60_000 });
  t.after(() => batcher.close());
  assert.equal(writeInPlace(batcher, 'first\n'), true);
  assert.equal(readFileSync(path, 'utf8'), 'first\n', 'after a quiet spell, at once');
  assert.equal(writeInPlace(batcher, line(1)), true);
  assert.equal(writeInPlace(batcher, line(2)), true);
  assert.equal(readFileSync(path, 'utf8'), 'first\n', 'two lines held (204 bytes)');
  // A third does not fit behind them: they are written, and it starts the next batch.
  assert.equal(writeInPlace(batcher, line(3)), true);
  assert.equal(readFileSync(path, 'utf8'), `first\n${line(1)}${line(2)}`);
  const wide = `${'é€😀'.repeat(30)}\n`; // 270 bytes: no batch holds it
  assert.equal(writeInPlace(batcher, wide), false, 'too long for a batch');
  batcher.writeLine(Buffer.from(wide));
  assert.equal(writeInPlace(batcher, 'last\n'), true);
  batcher.flush();
  assert.equal(readFileSync(path, 'utf8'), `first\n${line(1)}${line(2)}${line(3)}${wide}last\n`, 'nothing of the line that did not fit was left behind');
});

test('pending lines are written when the process exits, by process.exit or by an uncaught exception', async () => {
  const script = (ending: string): string => `
    import { createLogger } from '${join(import.meta.dirname, '../../src/log/create-logger.js')}';
    const logger = createLogger({ level: 'info', pretty: false });
    for (let i = 0; i < 500; i++) logger.info({ i }, 'line');
    ${ending}`;
  for (const ending of ['process.exit(3);', "throw new Error('boom');", '']) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script(ending)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.resume();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const seen = out.trimEnd().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
    assert.deepEqual(seen, Array.from({ length: 500 }, (_, i) => i), `every line, in order (${ending || 'loop ran dry'})`);
    assert.notEqual(code, null);
  }
});

test('a log reader that goes away (EPIPE) does not stop the process', async () => {
  const script = `
    import { createLogger } from '${join(import.meta.dirname, '../../src/log/create-logger.js')}';
    const logger = createLogger({ level: 'info', pretty: false });
    const started = Date.now();
    let i = 0;
    const tick = () => {
      for (let k = 0; k < 200; k++) logger.info({ i: i++ }, 'line');
      if (Date.now() - started < 1500) setTimeout(tick, 5);
      else { process.stderr.write('still running ' + i + '\\n'); process.exit(0); }
    };
    tick();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  await new Promise((resolve) => child.stdout.once('data', resolve));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err);
  assert.match(err, /still running \d+/);
});
