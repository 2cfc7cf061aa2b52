/** --workers: N processes on one listener, graceful shutdown, rolling restart on SIGHUP. Correctness, not speed. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { curl, rawConnect } from '../helpers/clients.js';
import { startCliProxy } from '../helpers/cli-process.js';
import { startOrigin, waitFor } from '../helpers/servers.js';

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        return Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === pid;
      } catch {
        return false; // the process ended while we looked
      }
    })
    .map(Number);
}

test('--workers 2: two worker processes serve one port; each log line names its worker', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const cli = await startCliProxy(t, ['--workers', '2']);
  assert.equal(cli.lines[0]?.['workers'], 2);
  const workers = childrenOf(cli.child.pid!);
  assert.equal(workers.length, 2);
  for (let i = 0; i < 10; i++) assert.equal((await curl(['-x', cli.url, `${origin.url}/${i}`])).stdout, 'ok');
  await waitFor(() => cli.lines.filter((l) => typeof l['flowId'] === 'string').length === 10, 5000, 'ten flow lines');
  const pids = new Set(cli.lines.filter((l) => typeof l['flowId'] === 'string').map((l) => l['pid'] as number));
  assert.ok([...pids].every((pid) => workers.includes(pid)), `flow lines come from the workers: ${[...pids].join(',')}`);
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});

test('--workers: SIGTERM lets in-flight requests finish in every worker, then exits 0', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.write('start-');
    setTimeout(() => res.end('end'), 400);
  });
  const cli = await startCliProxy(t, ['--workers', '2']);
  const conns = await Promise.all([rawConnect(cli.port), rawConnect(cli.port), rawConnect(cli.port)]);
  for (const conn of conns) conn.socket.write(`GET ${origin.url}/slow HTTP/1.1\r\nHost: x\r\n\r\n`);
  await Promise.all(conns.map((conn) => conn.waitFor('start-')));
  cli.child.kill('SIGTERM');
  for (const conn of conns) assert.match(await conn.waitFor('\r\n0\r\n\r\n'), /6\r\nstart-\r\n3\r\nend\r\n0\r\n\r\n$/);
  assert.equal(await cli.exited, 0);
});

test('--workers: SIGHUP replaces every worker one at a time without refusing a request', async (t) => {
  const origin = await startOrigin(t, (_req, res) => res.end('ok'));
  const cli = await startCliProxy(t, ['--workers', '2']);
  const before = childrenOf(cli.child.pid!);
  let failures = 0;
  let done = 0;
  let running = true;
  const load = (async () => {
    while (running) {
      const result = await curl(['-x', cli.url, origin.url]);
      if (result.stdout === 'ok') done++;
      else failures++;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 200));
  cli.child.kill('SIGHUP');
  await waitFor(() => cli.lines.some((l) => l['msg'] === 'all workers replaced'), 15_000, 'the rolling restart to finish');
  await new Promise((resolve) => setTimeout(resolve, 200));
  running = false;
  await load;
  const after = childrenOf(cli.child.pid!);
  assert.equal(after.length, 2);
  assert.ok(after.every((pid) => !before.includes(pid)), 'all workers are new');
  assert.equal(failures, 0, `${failures} failed requests out of ${done + failures}`);
  assert.ok(done > 5);
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});
