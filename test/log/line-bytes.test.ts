/**
 * LineBytes, the flow log's in-place JSON writer: numbers as a template string writes them, strings as
 * JSON.stringify escapes them (in UTF-8), and a line that runs past the buffer only counted, never written past it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineBytes } from '../../src/log/line-bytes.js';

function written(fill: (out: LineBytes) => void, size = 4096): string {
  const out = new LineBytes(Buffer.alloc(size));
  fill(out);
  assert.equal(out.overflowed, false);
  return out.buffer.toString('utf8', 0, out.pos);
}

test('numbers come out as a template string writes them', () => {
  const numbers = [0, 7, 9, 10, 99, 100, 65535, 1_796_676_078_647, -1, -120, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, 1.5, -0.25, 1e21, NaN, Infinity, -Infinity, -0];
  for (const n of numbers) assert.equal(written((out) => out.number(n)), `${n}`, `for ${n}`);
});

test('strings come out as JSON.stringify writes them: plain ASCII byte for byte, anything else escaped and in UTF-8', () => {
  const strings = ['', 'plain /path?q=1&r=2', 'quote " backslash \\', 'ctl \u0000\u0001\u001f\u007f', 'é€😀', 'lone \ud800 and \udfff', 'line\u2028sep\u2029', '\t\n\r\b\f', '~ and \u0080'];
  for (const text of strings) {
    assert.equal(written((out) => out.string(text)), JSON.stringify(text), `for ${JSON.stringify(text)}`);
    JSON.parse(written((out) => out.string(text)));
  }
});

test('past the end of the buffer nothing is written, and the position says by how much the line overflowed', () => {
  const out = new LineBytes(Buffer.alloc(8, 0x2e));
  out.ascii('abcd');
  out.string('é€😀 long enough');
  out.number(123456789);
  out.bytes(Buffer.from('tail'));
  assert.equal(out.overflowed, true);
  assert.equal(out.pos, 4 + Buffer.byteLength(JSON.stringify('é€😀 long enough')) + 9 + 4);
  assert.equal(out.buffer.toString('latin1', 0, 4), 'abcd', 'what fitted is intact');
  assert.equal(out.buffer.length, 8);
});
