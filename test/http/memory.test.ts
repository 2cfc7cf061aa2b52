/**
 * Back-pressure: a 100 MiB response to a client that reads at a trickle must not pile up in the proxy. The
 * proxy runs as its own process (the real CLI) so its memory is measured alone, from /proc.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { rawConnect } from '../helpers/clients.js';
import { startCliProxy } from '../helpers/cli-process.js';
import { startOrigin } from '../helpers/servers.js';

function memoryKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
}

const TOTAL = 100 * 1024 * 1024;
const CHUNK = 64 * 1024;

test('a 100 MiB response to a slow reader keeps the proxy\'s memory bounded', { timeout: 60_000 }, async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'Content-Length': String(TOTAL) });
    let sent = 0;
    const chunk = Buffer.alloc(CHUNK, 'x');
    // A generating stream: the origin produces only as fast as the proxy takes, like a real file server.
    Readable.from(
      (function* () {
        while (sent < TOTAL) {
          sent += CHUNK;
          yield chunk;
        }
      })(),
    ).pipe(res);
  });
  const cli = await startCliProxy(t);
  const pid = cli.child.pid!;
  const conn = await rawConnect(cli.port);
  // Warm up so the baseline includes what a first request allocates.
  conn.socket.pause();
  conn.socket.write(`GET ${origin.url}/big HTTP/1.1\r\nHost: x\r\n\r\n`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const baselineKiB = memoryKiB(pid, 'VmRSS');

  // Read about 64 MiB/s at most: slower than loopback by far, so without back-pressure the proxy would hold most of it.
  let received = 0;
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`only ${received} bytes after 45 s`)), 45_000);
    const timer = setInterval(() => {
      let budget = 640 * 1024;
      let chunk: Buffer | null;
      while (budget > 0 && (chunk = conn.socket.read() as Buffer | null) !== null) {
        received += chunk.length;
        budget -= chunk.length;
      }
      if (received >= TOTAL) {
        clearInterval(timer);
        clearTimeout(deadline);
        resolve();
      }
    }, 10);
  });
  const peakKiB = memoryKiB(pid, 'VmHWM');
  conn.socket.destroy();
  const growthMiB = (peakKiB - baselineKiB) / 1024;
  t.diagnostic(`read ${received} bytes in ${Date.now() - started} ms; proxy RSS baseline ${baselineKiB} KiB, peak ${peakKiB} KiB`);
  assert.ok(received >= TOTAL);
  assert.ok(growthMiB < 48, `proxy memory grew by ${growthMiB.toFixed(1)} MiB while relaying 100 MiB`);
  cli.child.kill('SIGTERM');
  await cli.exited;
});
