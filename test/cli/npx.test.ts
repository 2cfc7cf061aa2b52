/**
 * The README's front door: `npx getaway serve` in the repository after `npm install` starts a working proxy, run
 * with the Node flags the CLI's first line asks for.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { curl } from '../helpers/clients.js';
import { CLI_PATH, startNpxProxy } from '../helpers/cli-process.js';
import { startOrigin } from '../helpers/servers.js';

/** The command lines of the processes in process group `pgid`, from /proc. */
function commandLinesInGroup(pgid: number): string[][] {
  const lines: string[][] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name: state, ppid, pgrp, …
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      lines.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== ''));
    } catch {
      // the process ended meanwhile
    }
  }
  return lines;
}

test('npx getaway serve starts a proxy that forwards; the bin is plain node, as `node dist/src/cli/main.js` runs it', async (t) => {
  const shebang = readFileSync(CLI_PATH, 'utf8').split('\n', 1)[0]!;
  // No Node flags: process managers and the outside bench rig run the file with plain node, and must get the same program.
  assert.equal(shebang, '#!/usr/bin/env node');

  const origin = await startOrigin(t, (_req, res) => res.end('through npx'));
  const cli = await startNpxProxy(t);
  assert.equal((await curl(['-x', cli.url, origin.url])).stdout, 'through npx');

  // npx runs the bin through a shell and a link named after it, so the serving process is the node running `serve`.
  const group = commandLinesInGroup(cli.child.pid!);
  const serving = group.find((argv) => /(^|\/)node$/.test(argv[0] ?? '') && argv.includes('serve'));
  assert.ok(serving !== undefined, `the serving process is in the group npx started: ${JSON.stringify(group)}`);
});
