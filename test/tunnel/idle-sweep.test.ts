import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxyError } from '../../src/core/errors.js';
import { IdleSweep, type SweptStream } from '../../src/tunnel/idle-sweep.js';

class CountingStream implements SweptStream {
  bytes = 0;
  aborted: ProxyError | undefined;
  bytesMoved(): number {
    return this.bytes;
  }
  abort(reason: ProxyError): void {
    this.aborted ??= reason;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('a stream whose counter keeps moving is left alone; a silent one is aborted after the idle time, not before', async () => {
  const sweep = new IdleSweep(100);
  const busy = new CountingStream();
  const silent = new CountingStream();
  const busyEntry = sweep.watch(busy);
  const silentEntry = sweep.watch(silent);
  assert.equal(sweep.size, 2);
  for (let i = 0; i < 8; i++) {
    busy.bytes += 1;
    await sleep(30);
    if (i === 1) assert.equal(silent.aborted, undefined, 'aborted before the idle time');
  }
  assert.equal(busy.aborted, undefined);
  assert.equal(silent.aborted?.type, 'connection_read_timeout');
  assert.match(silent.aborted!.message, /idle for 100 ms/);
  busyEntry.remove();
  silentEntry.remove();
  assert.equal(sweep.size, 0);
});

test('streams() lists what is watched, and a removed stream is no longer swept', async () => {
  const sweep = new IdleSweep(40);
  const kept = new CountingStream();
  const removed = new CountingStream();
  const keptEntry = sweep.watch(kept);
  sweep.watch(removed).remove();
  assert.deepEqual(sweep.streams(), [kept]);
  await sleep(150);
  assert.equal(removed.aborted, undefined);
  assert.equal(kept.aborted?.type, 'connection_read_timeout');
  keptEntry.remove();
});
