/**
 * MITM figures: time to mint a new leaf, and TLS handshakes per second through an intercepted CONNECT for a host
 * whose leaf is cached. The proxy runs as the real CLI in its own process; the client side runs here.
 * Run: npm run bench:mitm
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { initCertificateAuthority } from '../src/mitm/certificate-authority.js';
import { chooseLeafNames } from '../src/mitm/certificate-names.js';
import { LeafCertificates } from '../src/mitm/leaf-certificates.js';
import { cliNodeFlags } from './support.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function mintTimes(dir: string): Promise<{ ecdsa: number; rsa: number; p99: number }> {
  const { ca } = await initCertificateAuthority(dir);
  const leaves = new LeafCertificates(ca, { maxEntries: 10_000 });
  await leaves.get(chooseLeafNames({ sni: 'warmup.test', connectHost: 'warmup.test' }), 'ecdsa');
  await leaves.get(chooseLeafNames({ sni: 'warmup.test', connectHost: 'warmup.test' }), 'rsa');
  const times: Record<'ecdsa' | 'rsa', number[]> = { ecdsa: [], rsa: [] };
  for (let i = 0; i < 300; i++) {
    for (const kind of ['ecdsa', 'rsa'] as const) {
      const started = performance.now();
      await leaves.get(chooseLeafNames({ sni: `host-${i}.bench.test`, connectHost: `host-${i}.bench.test` }), kind);
      times[kind].push(performance.now() - started);
    }
  }
  const sorted = times.ecdsa.slice().sort((a, b) => a - b);
  return { ecdsa: median(times.ecdsa), rsa: median(times.rsa), p99: sorted[Math.floor(sorted.length * 0.99)]! };
}

function handshakeThroughProxy(proxyPort: number, caPem: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: proxyPort, host: '127.0.0.1' });
    socket.once('error', reject);
    socket.once('connect', () => socket.write('CONNECT cached.bench.test:443 HTTP/1.1\r\nHost: cached.bench.test:443\r\n\r\n'));
    socket.once('data', (chunk: Buffer) => {
      if (!chunk.toString().startsWith('HTTP/1.1 200')) return reject(new Error(chunk.toString()));
      const tls = tlsConnect({ socket, servername: 'cached.bench.test', ca: caPem });
      tls.once('secureConnect', () => {
        tls.destroy();
        resolve();
      });
      tls.once('error', reject);
    });
  });
}

async function handshakesPerSecond(dir: string, caPem: string, seconds: number, concurrency: number): Promise<number> {
  const child = spawn(process.execPath, [...cliNodeFlags(CLI), CLI, 'serve', '--listen', '127.0.0.1:0', '--mitm', '--ca-dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(Number(/"port":(\d+)/.exec(chunk.toString())?.[1])));
    });
    // Every handshake logs a flow line; keep reading so the proxy never blocks on a full pipe.
    child.stdout.resume();
    await handshakeThroughProxy(port, caPem); // mints the leaf once
    let done = 0;
    const deadline = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) {
          await handshakeThroughProxy(port, caPem);
          done++;
        }
      }),
    );
    return done / seconds;
  } finally {
    child.kill();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'getaway-bench-ca-'));
const mint = await mintTimes(dir);
const { ca } = await initCertificateAuthority(dir);
const rate = await handshakesPerSecond(dir, ca.certPem, 5, 8);
console.log(`leaf mint (new host, ECDSA P-256 key reused, RSA-2048 CA signature): median ${mint.ecdsa.toFixed(2)} ms, p99 ${mint.p99.toFixed(2)} ms`);
console.log(`leaf mint (new host, RSA-2048 leaf key reused): median ${mint.rsa.toFixed(2)} ms`);
console.log(`TLS handshakes through an intercepted CONNECT, cached host, 8 concurrent clients: ${rate.toFixed(0)}/s`);
