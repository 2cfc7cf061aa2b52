/**
 * `getaway run`: real commands behind the audit proxy. Exit codes and signals pass through, stdin and stdout are
 * the command's, arguments are a vector, and the report lists the hosts the command reached, in every format.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { runCli, type RunCliOptions } from '../helpers/cli-process.js';
import { startOrigin, startTlsOrigin } from '../helpers/servers.js';
import { pythonWithRequests } from '../helpers/clients.js';
import { testCertificates, type TestCertificates } from '../helpers/test-ca.js';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** `getaway run ARGS` to its end (at most 30 s), with `input` on its stdin. */
function getawayRun(args: string[], input = '', env: NodeJS.ProcessEnv = process.env, onStart?: RunCliOptions['onStart']): ReturnType<typeof runCli> {
  return runCli(['run', ...args], env, { input, timeoutMs: 30_000, ...(onStart === undefined ? {} : { onStart }) });
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'getaway-run-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('exit codes pass through: 0, 7, and 128+15 for a command killed by SIGTERM', async () => {
  assert.equal((await getawayRun(['--', process.execPath, '-e', 'process.exit(0)'])).code, 0);
  assert.equal((await getawayRun(['--', process.execPath, '-e', 'process.exit(7)'])).code, 7);
  assert.equal((await getawayRun(['--', process.execPath, '-e', "process.kill(process.pid, 'SIGTERM')"])).code, 143);
  const missing = await getawayRun(['--', 'no-such-command-here']);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /cannot run no-such-command-here: .*ENOENT/);
});

test('stdin and stdout are the command\'s; arguments arrive as a vector, never through a shell', async () => {
  const echo = 'process.stdin.pipe(process.stdout); process.stdin.on("end", () => console.log(JSON.stringify(process.argv.slice(1))))';
  const result = await getawayRun(['--', process.execPath, '-e', echo, 'two words', '$(touch /tmp/should-not-exist)', ';', '*'], 'typed in\n');
  assert.equal(result.code, 0, result.stderr);
  const [piped, argv] = result.stdout.split('\n');
  assert.equal(piped, 'typed in');
  assert.deepEqual(JSON.parse(argv!), ['two words', '$(touch /tmp/should-not-exist)', ';', '*']);
});

test('a signal sent to getaway run reaches the command, which decides how to end', async () => {
  const script = 'process.on("SIGTERM", () => { console.log("child got SIGTERM"); process.exit(3); }); console.log("ready"); setInterval(() => {}, 1000);';
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  let pid = 0;
  const running = getawayRun(['--', process.execPath, '-e', script], '', process.env, (child) => {
    pid = child.pid!;
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && ready());
  });
  // Once the command says its handler is installed, signal getaway run, not the command.
  await isReady;
  process.kill(pid, 'SIGTERM');
  const result = await running;
  assert.match(result.stdout, /child got SIGTERM/);
  assert.equal(result.code, 3);
});

test('the command gets the proxy in the variables tools read, and no NO_PROXY to go around it', async () => {
  const env = { ...process.env, NO_PROXY: 'internal.example', no_proxy: 'internal.example', GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'user.name', GIT_CONFIG_VALUE_0: 'x', JAVA_TOOL_OPTIONS: '-Xmx64m' };
  const result = await getawayRun(['--', process.execPath, '-e', 'console.log(JSON.stringify(process.env))'], '', env);
  const seen = JSON.parse(result.stdout) as Record<string, string>;
  const url = seen['HTTP_PROXY']!;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  for (const name of ['HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'npm_config_proxy', 'npm_config_https_proxy', 'PIP_PROXY']) assert.equal(seen[name], url, name);
  assert.equal(seen['NO_PROXY'], undefined);
  assert.equal(seen['no_proxy'], undefined);
  assert.equal(seen['GIT_CONFIG_COUNT'], '2');
  assert.equal(seen['GIT_CONFIG_KEY_0'], 'user.name');
  assert.equal(seen['GIT_CONFIG_KEY_1'], 'http.proxy');
  assert.equal(seen['GIT_CONFIG_VALUE_1'], url);
  assert.match(seen['JAVA_TOOL_OPTIONS']!, /^-Xmx64m -Dhttp\.proxyHost=127\.0\.0\.1 -Dhttp\.proxyPort=\d+ -Dhttps\.proxyHost=127\.0\.0\.1 -Dhttps\.proxyPort=\d+$/);
});

test('curl and Python requests reach several hosts: the report lists each, with counts, bytes, methods and statuses', async (t) => {
  const dir = await tempDir(t);
  const a = await startOrigin(t, (req, res) => {
    req.resume();
    res.statusCode = req.url === '/missing' ? 404 : 200;
    res.end('from a');
  });
  const b = await startOrigin(t, (_req, res) => res.end('bee'.repeat(100)));
  const certs = testCertificates();
  const secure = await startTlsOrigin(t, certs, (_req, res) => res.end('secure'));
  const script = [
    'set -e',
    `curl -s ${a.url}/one?token=s3cret\\&page=2 > /dev/null`,
    `curl -s ${a.url}/missing > /dev/null`,
    `curl -s --data-binary hello http://localhost:${b.port}/post > /dev/null`,
    `curl -s --cacert ${certs.caCertPath} ${secure.url}/tls > /dev/null`,
    `${pythonWithRequests()} -c "import requests; assert requests.get('http://localhost:${b.port}/py').status_code == 200"`,
  ].join('\n');
  const reports = ['report.json', 'report.md', 'report.html'].map((name) => join(dir, name));
  const result = await getawayRun([...reports.flatMap((file) => ['--report', file]), '--', 'sh', '-c', script]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /getaway run: sh -c .* → exit 0/);
  assert.match(result.stderr, /3 hosts, 4 requests, 1 tunnels/);
  const report = JSON.parse(await readFile(reports[0]!, 'utf8')) as { hosts: Array<Record<string, unknown>>; totals: Record<string, number> };
  const byHost = new Map(report.hosts.map((h) => [h['host'] as string, h]));
  const hostA = byHost.get(`127.0.0.1:${a.port}`)!;
  assert.equal(hostA['requests'], 2);
  assert.deepEqual(hostA['statuses'], { 200: 1, 404: 1 });
  assert.deepEqual(hostA['urls'], [`${a.url}/one?token=REDACTED&page=2`, `${a.url}/missing`]);
  const hostB = byHost.get(`localhost:${b.port}`)!;
  assert.equal(hostB['requests'], 2);
  assert.deepEqual(hostB['methods'], ['POST', 'GET']);
  assert.equal(hostB['bytesUp'], 5);
  assert.equal(hostB['bytesDown'], 600);
  const tls = byHost.get(`localhost:${secure.port}`)!;
  assert.equal(tls['tunnels'], 1);
  assert.deepEqual(tls['schemes'], ['tunnel']);
  assert.deepEqual(tls['urls'], [], 'without --mitm only host and port are seen');
  const markdown = await readFile(reports[1]!, 'utf8');
  assert.match(markdown, new RegExp(`^\\| 127\\.0\\.0\\.1:${a.port} \\| http \\| 2 \\|`, 'm'));
  assert.ok(!markdown.includes('s3cret') && !(await readFile(reports[2]!, 'utf8')).includes('s3cret'), 'the token is in no report');
});

test('--mitm: the command trusts the interception CA through its environment, and the report has the https URLs', async (t) => {
  const dir = await tempDir(t);
  const certs = testCertificates();
  const secure = await startTlsOrigin(t, certs, (_req, res) => res.end('secret contents'));
  const report = join(dir, 'report.json');
  // curl is given no --cacert: CURL_CA_BUNDLE, set by getaway run, is what makes it trust the minted leaf.
  const result = await getawayRun(['--mitm', '--ca-dir', join(dir, 'ca'), '--ca-bundle', certs.caCertPath, '--report', report, '--', 'curl', '-sf', `${secure.url}/inside?api_key=k`]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'secret contents');
  const parsed = JSON.parse(await readFile(report, 'utf8')) as { intercepted: boolean; hosts: Array<{ host: string; urls: string[]; requests: number }> };
  assert.equal(parsed.intercepted, true);
  const host = parsed.hosts.find((h) => h.host === `localhost:${secure.port}`)!;
  assert.equal(host.requests, 1);
  assert.deepEqual(host.urls, [`${secure.url}/inside?api_key=REDACTED`]);
});

test('a report name with an unknown extension is refused before the command runs', async () => {
  const result = await getawayRun(['--report', '/tmp/report.txt', '--', process.execPath, '-e', 'console.log("ran")']);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /--report \/tmp\/report\.txt: the name must end in \.json, \.md or \.html/);
});

test('the HTML report is a page a browser renders: headless Chromium finds its host table', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const origin = await startOrigin(t, (_req, res) => res.end('<b>not markup in the report</b>'));
  const report = join(dir, 'report.html');
  const result = await getawayRun(['--report', report, '--', 'curl', '-s', `${origin.url}/a?x=<script>`]);
  assert.equal(result.code, 0, result.stderr);
  const dom = await new Promise<string>((resolve, reject) =>
    execFile(
      'chromium',
      ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', `--user-data-dir=${join(dir, 'profile')}`, '--dump-dom', `file://${report}`],
      { env: { ...process.env, HOME: dir }, timeout: 45_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr.slice(-2000)}`)) : resolve(stdout)),
    ),
  );
  const table = /<table id="hosts">([\s\S]*?)<\/table>/.exec(dom)?.[1] ?? '';
  assert.match(table, new RegExp(`<tr><td>127\\.0\\.0\\.1:${origin.port}</td><td>http</td><td>1</td><td>0</td>`));
  assert.ok(!/<script>/.test(dom.replace(/&lt;script&gt;/g, '')), 'text from the traffic is escaped, never markup');
});

/** A package directory packed by the real npm, served by a minimal registry (packument and tarball). */
async function startTinyRegistry(t: TestContext, dir: string, certs?: TestCertificates): Promise<{ url: string; tarball: Buffer }> {
  const source = join(dir, 'tiny-dep');
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'package.json'), JSON.stringify({ name: 'tiny-dep', version: '1.0.0', main: 'index.js' }));
  await writeFile(join(source, 'index.js'), 'module.exports = 42;\n');
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: source, encoding: 'utf8' }).trim().split('\n').pop()!;
  const tarball = await readFile(join(dir, packed));
  let base = '';
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === '/tiny-dep') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({
        name: 'tiny-dep',
        'dist-tags': { latest: '1.0.0' },
        versions: {
          '1.0.0': {
            name: 'tiny-dep', version: '1.0.0', main: 'index.js',
            dist: { tarball: `${base}/tiny-dep/-/tiny-dep-1.0.0.tgz`, shasum: createHash('sha1').update(tarball).digest('hex'), integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}` },
          },
        },
      }));
      return;
    }
    if (req.url === '/tiny-dep/-/tiny-dep-1.0.0.tgz') return void res.end(tarball);
    res.statusCode = 404;
    res.end('{}');
  };
  const registry = certs === undefined ? await startOrigin(t, serve) : await startTlsOrigin(t, certs, serve);
  base = registry.url;
  return { url: registry.url, tarball };
}

for (const mitm of [false, true]) {
  test(`a real npm install from a local ${mitm ? 'HTTPS registry with --mitm' : 'HTTP registry'}: the report and the CycloneDX SBOM name the package, its purl and the sha256 of what passed`, { timeout: 60_000 }, async (t) => {
    const dir = await tempDir(t);
    const certs = mitm ? testCertificates() : undefined;
    const { url, tarball } = await startTinyRegistry(t, dir, certs);
    const project = join(dir, 'project');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'project', version: '0.0.0', private: true }));
    const report = join(dir, 'report.json');
    const sbom = join(dir, 'sbom.json');
    // With --mitm, npm trusts the minted leaf only through npm_config_cafile, which getaway run sets.
    const interception = certs === undefined ? [] : ['--mitm', '--ca-dir', join(dir, 'ca'), '--ca-bundle', certs.caCertPath];
    const result = await getawayRun([...interception, '--report', report, '--sbom', sbom, '--', 'npm', 'install', '--no-audit', '--no-fund', '--registry', `${url}/`, '--cache', join(dir, 'cache'), '--prefix', project, 'tiny-dep']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(await readFile(join(project, 'node_modules', 'tiny-dep', 'index.js'), 'utf8'), /42/);
    const sha256 = createHash('sha256').update(tarball).digest('hex');
    const parsed = JSON.parse(await readFile(report, 'utf8')) as { dependencies: Array<Record<string, unknown>> };
    assert.deepEqual(parsed.dependencies, [{ ecosystem: 'npm', name: 'tiny-dep', version: '1.0.0', purl: 'pkg:npm/tiny-dep@1.0.0', url: `${url}/tiny-dep/-/tiny-dep-1.0.0.tgz`, size: tarball.length, sha256 }]);
    assert.match(result.stderr, /1 dependencies pulled: pkg:npm\/tiny-dep@1\.0\.0/);
    const bom = JSON.parse(await readFile(sbom, 'utf8')) as { bomFormat: string; specVersion: string; components: Array<Record<string, unknown>> };
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.equal(bom.specVersion, '1.5');
    assert.equal(bom.components.length, 1);
    assert.equal(bom.components[0]!['purl'], 'pkg:npm/tiny-dep@1.0.0');
    assert.deepEqual(bom.components[0]!['hashes'], [{ alg: 'SHA-256', content: sha256 }]);
  });
}

test('learn then enforce: a learned allow-list lets the same run through and refuses anything new with 403', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const known = await startOrigin(t, (_req, res) => res.end('known'));
  const other = await startOrigin(t, (_req, res) => res.end('other'));
  const learned = join(dir, 'hosts.txt');
  const learning = await getawayRun(['--learn', learned, '--', 'curl', '-s', `${known.url}/`]);
  assert.equal(learning.code, 0, learning.stderr);
  assert.match(await readFile(learned, 'utf8'), /^127\.0\.0\.1$/m);
  assert.doesNotMatch(await readFile(learned, 'utf8'), /localhost/);

  const script = `curl -s -o /dev/null -w "%{http_code} " ${known.url}/; curl -s -o /dev/null -w "%{http_code} " http://localhost:${other.port}/; curl -s -o /dev/null https://localhost:${other.port}/ || echo "connect refused $?"`;
  const report = join(dir, 'report.json');
  const enforced = await getawayRun(['--allow-file', learned, '--enforce', '--report', report, '--', 'sh', '-c', script]);
  assert.match(enforced.stdout, /^200 403 connect refused 56/);
  assert.equal(enforced.code, 1, 'refusals fail the run even though the command succeeded');
  assert.match(enforced.stderr, /2 requests outside the policy were refused/);
  const parsed = JSON.parse(await readFile(report, 'utf8')) as { policy: { enforce: boolean; violations: Array<Record<string, unknown>> }; denied: unknown[] };
  assert.equal(parsed.policy.enforce, true);
  assert.deepEqual(parsed.policy.violations.map((v) => [v['method'], v['host'], v['rule'], v['refused']]), [
    ['GET', 'localhost', 'not in the allow list', true],
    ['CONNECT', 'localhost', 'not in the allow list', true],
  ]);
  assert.equal(parsed.denied.length, 2);

  const noted = await getawayRun(['--allow-file', learned, '--', 'curl', '-s', `http://localhost:${other.port}/`]);
  assert.equal(noted.code, 0);
  assert.equal(noted.stdout, 'other', 'without --enforce nothing is refused');
  assert.match(noted.stderr, /outside the policy \(not enforced\): GET http:\/\/localhost:\d+\/ \(not in the allow list\)/);

  const denied = await getawayRun(['--allow', '127.0.0.1', '--deny', `127.0.0.1:${known.port}`, '--enforce', '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `${known.url}/`]);
  assert.equal(denied.stdout, '403', '--deny wins over --allow');
  const bad = await getawayRun(['--allow', 'not a pattern!', '--', 'true']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--allow not a pattern!: bad host pattern/);
});

/** A minimal wheel (PEP 427) written with Python's zipfile: METADATA, WHEEL, RECORD and one module. */
function buildWheel(dir: string): string {
  const path = join(dir, 'tiny_py-1.0.0-py3-none-any.whl');
  const script = [
    'import sys, zipfile',
    'z = zipfile.ZipFile(sys.argv[1], "w")',
    'z.writestr("tiny_py/__init__.py", "VALUE = 42\\n")',
    'z.writestr("tiny_py-1.0.0.dist-info/METADATA", "Metadata-Version: 2.1\\nName: tiny-py\\nVersion: 1.0.0\\n")',
    'z.writestr("tiny_py-1.0.0.dist-info/WHEEL", "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")',
    'z.writestr("tiny_py-1.0.0.dist-info/RECORD", "tiny_py/__init__.py,,\\ntiny_py-1.0.0.dist-info/METADATA,,\\ntiny_py-1.0.0.dist-info/WHEEL,,\\ntiny_py-1.0.0.dist-info/RECORD,,\\n")',
    'z.close()',
  ].join('\n');
  execFileSync(pythonWithRequests(), ['-c', script, path]);
  return path;
}

test('pip download from a local simple index: the wheel is in the report as pkg:pypi with the sha256 of what passed', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const wheel = await readFile(buildWheel(dir));
  const index = await startOrigin(t, (req, res) => {
    if (req.url === '/simple/tiny-py/') {
      res.setHeader('Content-Type', 'text/html');
      return void res.end(`<html><body><a href="/packages/tiny_py-1.0.0-py3-none-any.whl#sha256=${createHash('sha256').update(wheel).digest('hex')}">tiny_py-1.0.0-py3-none-any.whl</a></body></html>`);
    }
    if (req.url === '/packages/tiny_py-1.0.0-py3-none-any.whl') return void res.end(wheel);
    res.statusCode = 404;
    res.end();
  });
  const report = join(dir, 'report.json');
  const result = await getawayRun(['--report', report, '--', pythonWithRequests(), '-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check', '--no-cache-dir', '--index-url', `${index.url}/simple/`, '--dest', join(dir, 'out'), 'tiny-py']);
  assert.equal(result.code, 0, result.stderr);
  const parsed = JSON.parse(await readFile(report, 'utf8')) as { dependencies: Array<Record<string, unknown>> };
  assert.deepEqual(parsed.dependencies.map((d) => [d['purl'], d['size'], d['sha256']]), [['pkg:pypi/tiny-py@1.0.0', wheel.length, createHash('sha256').update(wheel).digest('hex')]]);
});

/** Debian's git-http-backend behind a node:http server (CGI: request facts in the environment, body on stdin). */
async function startGitServer(t: TestContext, root: string): Promise<string> {
  const origin = await startOrigin(t, (req, res) => {
    const url = new URL(req.url!, 'http://git.test');
    const cgi = spawn('/usr/lib/git-core/git-http-backend', [], {
      env: { ...process.env, GIT_PROJECT_ROOT: root, GIT_HTTP_EXPORT_ALL: '1', PATH_INFO: url.pathname, QUERY_STRING: url.search.slice(1), REQUEST_METHOD: req.method, CONTENT_TYPE: req.headers['content-type'] ?? '', REMOTE_ADDR: '127.0.0.1' },
    });
    req.pipe(cgi.stdin);
    const parts: Buffer[] = [];
    cgi.stdout.on('data', (chunk: Buffer) => parts.push(chunk));
    cgi.on('close', () => {
      const output = Buffer.concat(parts);
      const split = output.indexOf('\r\n\r\n');
      for (const line of output.subarray(0, split).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).trim();
        if (/^status$/i.test(name)) res.statusCode = Number(value.split(' ')[0]);
        else res.setHeader(name, value);
      }
      res.end(output.subarray(split + 4));
    });
  });
  return origin.url;
}

test('git clone over HTTP (git-http-backend): the clone works through the proxy and the report has the smart-HTTP URLs', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const repo = join(dir, 'repos', 'demo.git');
  const git = (args: string[], cwd?: string) => execFileSync('git', args, { cwd, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.org' } });
  const work = join(dir, 'work');
  await mkdir(work);
  git(['init', '-q', work]);
  await writeFile(join(work, 'README'), 'cloned through getaway\n');
  git(['add', 'README'], work);
  git(['commit', '-q', '-m', 'first'], work);
  git(['clone', '-q', '--bare', work, repo]);
  const base = await startGitServer(t, join(dir, 'repos'));
  const report = join(dir, 'report.json');
  const result = await getawayRun(['--report', report, '--', 'git', 'clone', '-q', `${base}/demo.git`, join(dir, 'clone')]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await readFile(join(dir, 'clone', 'README'), 'utf8'), 'cloned through getaway\n');
  const parsed = JSON.parse(await readFile(report, 'utf8')) as { hosts: Array<{ host: string; urls: string[]; methods: string[] }> };
  const host = parsed.hosts.find((h) => h.host === new URL(base).host)!;
  assert.ok(host.urls.some((u) => u.endsWith('/demo.git/info/refs?service=git-upload-pack')), host.urls.join(' '));
  assert.ok(host.methods.includes('POST'), 'the pack negotiation went through the proxy too');
});
