/**
 * The chunked body counter the direct exchange relays with (src/http/chunked-decoder.ts): the data it reports and
 * where it says the body ends, for every way a read can split the bytes, and a ProxyError for framing llhttp's
 * strict mode refuses too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkedDecoder } from '../../src/http/chunked-decoder.js';
import { ProxyError } from '../../src/core/errors.js';

interface Decoded {
  data: string;
  /** Offset in the whole input just past the body, or -1. */
  end: number;
  trailers: string[];
}

/** Feeds `input` in pieces cut at `cuts` (offsets), as reads would deliver it. */
function decode(input: string, cuts: number[] = []): Decoded {
  const bytes = Buffer.from(input, 'latin1');
  const decoder = new ChunkedDecoder();
  let data = '';
  let end = -1;
  const bounds = [0, ...cuts, bytes.length];
  for (let i = 0; i + 1 < bounds.length && end === -1; i++) {
    // Each piece is its own buffer, as each read is a view of the start of the shared read buffer.
    const piece = Buffer.from(bytes.subarray(bounds[i]!, bounds[i + 1]!));
    const at = decoder.push(piece, 0, piece.length, (from, to) => (data += piece.subarray(from, to).toString('latin1')));
    if (at !== -1) end = bounds[i]! + at;
  }
  assert.equal(decoder.done, end !== -1);
  return { data, end, trailers: decoder.trailers };
}

const BODY = '5\r\nhello\r\n1;name=value;q="a b"\r\n \r\nA\r\n0123456789\r\n0\r\nX-Digest: abc\r\nX-Empty:\r\n\r\n';

test('a chunked body decodes to its data, with extensions skipped and trailers kept, wherever the reads split it', () => {
  const whole = decode(BODY);
  assert.deepEqual(whole, { data: 'hello 0123456789', end: BODY.length, trailers: ['X-Digest', 'abc', 'X-Empty', ''] });
  for (let cut = 1; cut < BODY.length; cut++) assert.deepEqual(decode(BODY, [cut]), whole, `split at ${cut}`);
  const everyByte = Array.from({ length: BODY.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(decode(BODY, everyByte), whole, 'one byte per read');
});

test('the end offset stops at the body: bytes after it are not data', () => {
  const extra = `${BODY}HTTP/1.1 200 OK\r\n`;
  assert.deepEqual(decode(extra), { data: 'hello 0123456789', end: BODY.length, trailers: ['X-Digest', 'abc', 'X-Empty', ''] });
  assert.deepEqual(decode('0\r\n\r\n'), { data: '', end: 5, trailers: [] });
  assert.deepEqual(decode('3\r\nabc\r\n'), { data: 'abc', end: -1, trailers: [] }, 'unfinished');
});

test('sizes are hex in either case, and large data runs are reported in one piece per read', () => {
  const big = 'x'.repeat(0x1f0);
  assert.equal(decode(`1F0\r\n${big}\r\n1f0\r\n${big}\r\n0\r\n\r\n`).data, big + big);
  const bytes = Buffer.from(`1f0\r\n${big}\r\n0\r\n\r\n`, 'latin1');
  const runs: number[] = [];
  new ChunkedDecoder().push(bytes, 0, bytes.length, (from, to) => runs.push(to - from));
  assert.deepEqual(runs, [0x1f0]);
});

const MALFORMED: Array<[string, string]> = [
  ['no size', '\r\nabc\r\n0\r\n\r\n'],
  ['a space after the size', '3 \r\nabc\r\n0\r\n\r\n'],
  ['a bare LF after the size', '3\nabc\r\n0\r\n\r\n'],
  ['a non-hex size', '3g\r\nabc\r\n0\r\n\r\n'],
  ['a negative size', '-3\r\nabc\r\n0\r\n\r\n'],
  ['a size too large', 'fffffffffffffff\r\n'],
  ['data longer than its size', '3\r\nabcd\r\n0\r\n\r\n'],
  ['a bare LF after data', '3\r\nabc\n0\r\n\r\n'],
  ['a control character in an extension', '3;a=\x01\r\nabc\r\n0\r\n\r\n'],
  ['a bare LF in an extension', '3;a\nb\r\nabc\r\n0\r\n\r\n'],
  ['a trailer without a colon', '0\r\nX-Digest abc\r\n\r\n'],
  ['a trailer name with a space', '0\r\nX Digest: abc\r\n\r\n'],
  ['whitespace before a trailer colon', '0\r\nX-Digest : abc\r\n\r\n'],
  ['an obs-folded trailer', '0\r\nX-A: a\r\n b\r\n\r\n'],
  ['a bare LF in a trailer', '0\r\nX-A: a\nX-B: b\r\n\r\n'],
  ['a control character in a trailer value', '0\r\nX-A: a\x00b\r\n\r\n'],
  ['a bare LF at the end', '0\r\n\n'],
];

for (const [name, input] of MALFORMED) {
  test(`refused: ${name}`, () => {
    assert.throws(() => decode(input), (err: unknown) => err instanceof ProxyError && err.type === 'http_protocol_error');
  });
}

test('extension and trailer sections are bounded', () => {
  const longExtension = `1;${'a'.repeat(17_000)}\r\nx\r\n0\r\n\r\n`;
  assert.throws(() => decode(longExtension), (err: unknown) => err instanceof ProxyError && err.type === 'http_protocol_error');
  const manyExtensions = `${'1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nx\r\n'.repeat(500)}0\r\n\r\n`;
  assert.throws(() => decode(manyExtensions), (err: unknown) => err instanceof ProxyError && err.type === 'http_protocol_error', 'counted across chunks');
  const longTrailers = `0\r\n${'X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(500)}\r\n`;
  assert.throws(() => decode(longTrailers), (err: unknown) => err instanceof ProxyError && err.type === 'http_response_header_section_size');
});
