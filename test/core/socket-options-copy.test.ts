/**
 * src/core/socket-options-copy.ts: once a proxy exists, the options copy in net.Socket's constructor lands on shared
 * maps, so the stream constructors' property accesses hit their caches. Checked in a child process run with
 * --allow-natives-syntax: a conditional breakpoint (never pausing) on the line after the copy keeps each socket's
 * copied options, and %HaveSameMap compares consecutive ones of the same shape, for the proxy's accepted client
 * sockets and its origin sockets under 40 real CONNECT tunnels.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

const index = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'index.js')).href;

/** The child: `withProxy` makes connections through a getaway proxy, otherwise straight to a bare net server. */
function script(withProxy: boolean): string {
  return `
import { Session } from 'node:inspector';
import { connect, createServer } from 'node:net';
const session = new Session();
session.connect();
const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));
let netScript;
session.on('Debugger.scriptParsed', ({ params }) => { if (params.url === 'node:net') netScript = params.scriptId; });
await post('Debugger.enable');
const { scriptSource } = await post('Debugger.getScriptSource', { scriptId: netScript });
// The line that hands the copied options on, inside Socket's constructor.
const lineNumber = scriptSource.split('\\n').findIndex((line) => line.trim() === 'stream.Duplex.call(this, options);');
if (lineNumber === -1) { console.log(JSON.stringify({ unsupported: true })); process.exit(0); }
globalThis.copies = [];
globalThis.keep = (options) => { globalThis.copies.push(options); };
await post('Debugger.setBreakpoint', { location: { scriptId: netScript, lineNumber }, condition: 'globalThis.keep(options), false' });

const echo = createServer((socket) => socket.pipe(socket));
await new Promise((resolve) => echo.listen(0, '127.0.0.1', resolve));
let port = echo.address().port;
let proxy;
if (${withProxy}) {
  const { createProxy } = await import(${JSON.stringify(index)});
  proxy = createProxy({ host: '127.0.0.1', port: 0 });
  port = (await proxy.listen()).port;
}
for (let i = 0; i < 40; i++) {
  await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(${withProxy} ? 'CONNECT 127.0.0.1:' + echo.address().port + ' HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nping' : 'ping'));
    let data = '';
    socket.on('data', (chunk) => { data += chunk; if (data.endsWith('ping')) socket.end(); });
    socket.on('close', resolve);
    socket.on('error', reject);
  });
}
const groups = {};
const last = {};
for (const options of globalThis.copies) {
  const shape = Object.keys(options).join(',');
  const group = (groups[shape] ??= { sockets: 0, sameMapAsPrevious: 0 });
  group.sockets++;
  if (last[shape] !== undefined && %HaveSameMap(last[shape], options)) group.sameMapAsPrevious++;
  last[shape] = options;
}
console.log(JSON.stringify({ groups }));
await proxy?.close();
process.exit(0);
`;
}

interface Groups {
  unsupported?: true;
  groups: Record<string, { sockets: number; sameMapAsPrevious: number }>;
}

function run(withProxy: boolean): Promise<Groups> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script(withProxy)], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as Groups);
    });
  });
}

test('with a proxy created, every new socket copies its options onto the same maps as the socket before it', { timeout: 60_000 }, async (t) => {
  const [bare, proxied] = await Promise.all([run(false), run(true)]);
  if (proxied.unsupported) {
    t.skip('this Node has no `stream.Duplex.call(this, options);` line in net.Socket to watch');
    return;
  }
  // What the same connections get without getaway's setting: on Node 20 next to none of them share a map.
  for (const [shape, group] of Object.entries(bare.groups)) t.diagnostic(`bare net server, ${shape}: ${group.sameMapAsPrevious}/${group.sockets - 1}`);
  const accepted = Object.entries(proxied.groups).filter(([shape]) => shape.startsWith('handle,'));
  const dialled = Object.entries(proxied.groups).filter(([shape]) => shape.startsWith('host,port,'));
  assert.ok(accepted.length > 0 && dialled.length > 0, `no accepted or dialled sockets seen: ${JSON.stringify(proxied.groups)}`);
  for (const [shape, group] of [...accepted, ...dialled]) {
    if (group.sockets < 10) continue;
    assert.ok(group.sameMapAsPrevious >= 0.9 * (group.sockets - 1), `${shape}: ${group.sameMapAsPrevious} of ${group.sockets - 1} copies on the previous one's map`);
  }
});
