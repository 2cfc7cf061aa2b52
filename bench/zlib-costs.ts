/**
 * The zlib figures the WARC writer's choices rest on (src/archive/warc-writer.ts, docs/performance.md): deflate
 * throughput on incompressible and on text bytes at levels 1 and 6, and the per-record cost of a 1.2 KB record
 * through gzipSync against a long-lived stream with a full flush. Run: npm run bench:zlib
 */
import { randomBytes } from 'node:crypto';
import { constants, createDeflateRaw, gzipSync } from 'node:zlib';

function mbPerSecond(bytes: Buffer, level: number): number {
  const started = performance.now();
  gzipSync(bytes, { level });
  return bytes.length / 1e6 / ((performance.now() - started) / 1000);
}

const random = randomBytes(32 * 1024 * 1024);
const text = Buffer.from('<html><body><p>some text with words and numbers 12345, as pages have</p></body></html>\n'.repeat(400_000));
for (const level of [1, 6]) {
  console.log(`deflate level ${level}: ${mbPerSecond(random, level).toFixed(0)} MB/s on random bytes, ${mbPerSecond(text, level).toFixed(0)} MB/s on text`);
}

const record = Buffer.concat([Buffer.from('WARC/1.1\r\nWARC-Type: response\r\nContent-Length: 1100\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n'), Buffer.alloc(1024, 120)]);
const N = 5000;
let cpu = process.cpuUsage();
for (let i = 0; i < N; i++) gzipSync(record, { windowBits: 12, memLevel: 4 });
let used = process.cpuUsage(cpu);
console.log(`gzipSync of a ${record.length}-byte record: ${((used.user + used.system) / N).toFixed(1)} µs of CPU each`);
const stream = createDeflateRaw({ level: 6 });
stream.on('data', () => undefined);
cpu = process.cpuUsage();
for (let i = 0; i < N; i++) {
  stream.write(record);
  await new Promise<void>((resolve) => stream.flush(constants.Z_FULL_FLUSH, () => resolve()));
}
used = process.cpuUsage(cpu);
stream.close();
console.log(`the same through one long-lived stream with a full flush: ${((used.user + used.system) / N).toFixed(1)} µs of CPU each`);
