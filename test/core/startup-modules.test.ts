/**
 * A proxy that does not intercept, use SOCKS or read YAML does not load the libraries for them. Not a matter of
 * taste: with them in the start-up heap V8 ran mark-compacts during bulk tunnels (docs/performance.md, "Heap size
 * at start-up"). Module loading is recorded by a
 * resolve hook in a child process, so this asserts what was loaded, not how fast anything ran.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

const LAZY_LIBRARIES = ['pkijs', 'asn1js', 'socks', 'yaml', 'prom-client'];

function loadedModules(script: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-modules-'));
  const log = join(dir, 'resolved.txt');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, result.url + '\\n');
  return result;
}
`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  writeFileSync(log, '');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', pathToFileURL(register).href, '--input-type=module', '-e', script], { timeout: 20_000, cwd: join(import.meta.dirname, '..', '..', '..') }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(readFileSync(log, 'utf8').split('\n').filter((line) => line !== ''));
    });
  });
}

const index = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'index.js')).href;

test('a plain proxy (no interception, no SOCKS) starts, serves a tunnel and stops without loading X.509, SOCKS, YAML or metrics code', async () => {
  const modules = await loadedModules(`
import { createServer } from 'node:net';
import { connect } from 'node:net';
const { createProxy } = await import(${JSON.stringify(index)});
const origin = createServer((s) => s.end('hi'));
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const proxy = createProxy({ host: '127.0.0.1', port: 0 });
const { port } = await proxy.listen();
const reply = await new Promise((resolve, reject) => {
  const socket = connect(port, '127.0.0.1', () => socket.write('CONNECT 127.0.0.1:' + origin.address().port + ' HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'));
  let data = '';
  socket.on('data', (chunk) => (data += chunk));
  socket.on('end', () => resolve(data));
  socket.on('error', reject);
});
if (!reply.startsWith('HTTP/1.1 200') || !reply.endsWith('hi')) throw new Error('tunnel failed: ' + reply);
await proxy.close();
origin.close();
`);
  // The hook saw getaway's own modules, so an empty list cannot pass by accident.
  assert.ok(modules.some((url) => url.endsWith('/src/core/proxy.js')), `resolve hook recorded: ${modules.join(', ')}`);
  for (const library of LAZY_LIBRARIES) {
    assert.deepEqual(
      modules.filter((url) => url.includes(`/node_modules/${library}/`)),
      [],
      `${library} was loaded by a proxy that does not need it`,
    );
  }
});

test('the lazily loaded libraries are still found when needed', async () => {
  const modules = await loadedModules(`
await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'mitm', 'create-mitm.js')).href)});
await import('socks');
await import('yaml');
await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'metrics.js')).href)});
`);
  for (const library of LAZY_LIBRARIES) assert.ok(modules.some((url) => url.includes(`/node_modules/${library}/`)), `${library} not resolved`);
});
