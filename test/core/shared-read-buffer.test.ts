/**
 * The chunks reads are copied into come in two sizes (src/core/shared-read-buffer.ts): a read of up to 64 KiB must
 * not pin a whole READ_SIZE chunk while its write is pending, and a chunk given back is reused for its own size only.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { READ_SIZE, returnChunk, sharedReadBuffer, takeChunk } from '../../src/core/shared-read-buffer.js';

test('a chunk holds the read it is taken for, in the smaller size where that is enough, and comes back for its own size', () => {
  assert.equal(sharedReadBuffer.length, READ_SIZE);
  const medium = takeChunk(65536);
  const large = takeChunk(65537);
  assert.equal(medium.length, 65536);
  assert.equal(large.length, READ_SIZE);
  assert.equal(takeChunk(READ_SIZE).length, READ_SIZE);
  returnChunk(medium);
  returnChunk(large);
  assert.equal(takeChunk(9000), medium);
  assert.equal(takeChunk(200_000), large);
});
