// npm's install step for the optional native pieces: native/socket_options.c (used only by --transparent) and
// native/kernel_splice.c (plain tunnels moved by splice(2)). It never fails the install: where they cannot be built
// (not Linux, no compiler, no Node headers) getaway works as before, tunnels copy in JavaScript and --transparent
// says at start why it cannot run. GETAWAY_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function skip(reason) {
  console.warn(`getaway: native modules not built (${reason}): no transparent mode, and tunnels copy in JavaScript; everything else works. See docs/transparent.md.`);
  process.exit(0);
}

if (process.env.GETAWAY_SKIP_NATIVE === '1') skip('GETAWAY_SKIP_NATIVE=1');
if (process.platform !== 'linux') skip(`${process.platform} is not Linux`);
// npm names the node-gyp it bundles; outside npm, look next to the npm that runs this node.
const nodeGyp = process.env.npm_config_node_gyp ?? join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
if (!existsSync(nodeGyp)) skip('node-gyp not found');
// Node's own headers, when this Node was installed with them (Debian's, the official tarballs): node-gyp would
// otherwise download them, which fails offline.
const args = [nodeGyp, 'rebuild'];
const prefix = join(dirname(process.execPath), '..');
if (process.env.npm_config_nodedir === undefined && existsSync(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 180_000 });
if (result.status !== 0) {
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
  skip(`node-gyp rebuild failed${result.error ? `: ${result.error.message}` : ''}\n${output}`);
}
