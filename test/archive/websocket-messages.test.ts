/** The WebSocket frame reader, table-driven: masks, fragments, control frames between fragments, lengths, limits, splits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDeflateExtension, WebSocketMessageReader } from '../../src/archive/websocket-messages.js';

function frame(opcode: number, payload: Buffer, options: { fin?: boolean; mask?: Buffer; rsv1?: boolean } = {}): Buffer {
  const fin = options.fin ?? true;
  const b0 = (fin ? 0x80 : 0) | (options.rsv1 ? 0x40 : 0) | opcode;
  const maskBit = options.mask === undefined ? 0 : 0x80;
  let header: Buffer;
  if (payload.length < 126) header = Buffer.from([b0, maskBit | payload.length]);
  else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = b0;
    header[1] = maskBit | 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = b0;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  if (options.mask === undefined) return Buffer.concat([header, payload]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ options.mask![i % 4]!));
  return Buffer.concat([header, options.mask, masked]);
}

const MASK = Buffer.from([1, 2, 3, 4]);

test('messages come out whole whatever the chunking of the bytes', () => {
  const big = Buffer.alloc(70_000, 9);
  const stream = Buffer.concat([
    frame(1, Buffer.from('hello'), { mask: MASK }),
    frame(1, Buffer.from('frag-'), { fin: false }),
    frame(9, Buffer.from('ping!')),
    frame(0, Buffer.from('mented')),
    frame(2, big),
    frame(2, Buffer.alloc(300, 1)),
    frame(8, Buffer.from([0x03, 0xe8]), { mask: MASK }),
  ]);
  for (const size of [1, 2, 3, 7, 64, 1000, stream.length]) {
    const reader = new WebSocketMessageReader(1 << 20);
    const out = [];
    for (let at = 0; at < stream.length; at += size) out.push(...reader.push(stream.subarray(at, at + size)));
    assert.equal(reader.broken, undefined);
    assert.deepEqual(
      out.map((m) => [m.opcode, m.masked, m.length, m.opcode === 2 ? m.payload.length : m.payload.toString('latin1')]),
      [
        [1, true, 5, 'hello'],
        [9, false, 5, 'ping!'],
        [1, false, 11, 'frag-mented'],
        [2, false, 70_000, 70_000],
        [2, false, 300, 300],
        [8, true, 2, '\x03\xe8'],
      ],
      `chunks of ${size}`,
    );
  }
});

test('a message past the limit is kept to it and reports its full length; RSV1 marks a compressed message', () => {
  const reader = new WebSocketMessageReader(100);
  const [long] = reader.push(frame(2, Buffer.alloc(1000, 5), { mask: MASK }));
  assert.equal(long!.payload.length, 100);
  assert.equal(long!.length, 1000);
  assert.ok(long!.payload.every((byte) => byte === 5), 'unmasked correctly');
  const [compressed] = reader.push(frame(1, Buffer.from([1, 2, 3]), { rsv1: true }));
  assert.equal(compressed!.compressed, true);
});

test('bytes that are not WebSocket stop the reader instead of being misread', () => {
  for (const [name, bytes] of [
    ['a reserved opcode', Buffer.from([0x83, 0x00])],
    ['a continuation outside a message', Buffer.from([0x80, 0x00])],
    ['a fragmented control frame', Buffer.from([0x09, 0x00])],
    ['a 126-byte ping', frame(9, Buffer.alloc(126))],
  ] as const) {
    const reader = new WebSocketMessageReader(1024);
    reader.push(bytes);
    assert.ok(reader.broken, name);
  }
});

test('permessage-deflate parameters are read from the 101', () => {
  assert.equal(parseDeflateExtension(undefined), undefined);
  assert.equal(parseDeflateExtension('x-webkit-deflate-frame'), undefined);
  assert.deepEqual(parseDeflateExtension('permessage-deflate; client_max_window_bits=15; server_no_context_takeover'), { clientNoContextTakeover: false, serverNoContextTakeover: true });
  assert.deepEqual(parseDeflateExtension('foo, permessage-deflate; client_no_context_takeover'), { clientNoContextTakeover: true, serverNoContextTakeover: false });
});
