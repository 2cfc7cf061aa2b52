#!/usr/bin/env node
// No Node flags here: `node dist/src/cli/main.js` (what ../shared/bench-rig and process managers run) and `npx getaway`
// must be the same program. --initial-old-space-size=64 used to stand here against mark-compacts during bulk tunnels;
// since tunnels read through onread and interception loads lazily, paired runs with and without it read 1.00
// (keep-alive 0.98, bulk 1.00, bulk after keep-alive 1.00 with no mark-compact on either side; docs/performance.md).
import { Command, InvalidArgumentError, Option } from 'commander';
import type { LevelWithSilent } from 'pino';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { CaError, defaultCaDir } from '../mitm/ca-files.js';
import { TransparentUnavailableError } from '../listeners/socket-options.js';
import { parseAdmin, parseExplicitListen, parseTransparent, type ServeSettings } from '../config/config-file.js';
import { OptionsError } from '../config/options.js';
import { LOG_LEVELS } from '../log/create-logger.js';
import { STRATEGY_NAMES } from '../upstream/upstream-strategy.js';
import type { RateLimit } from '../addons/rate-limits.js';
import { serve, type ServeCommandOptions } from './serve.js';
import { warcOptionsProblems, type WarcArchiverOptions } from '../config/warc-options.js';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

function positiveInteger(flag: string, unit = '') {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) <= 0) throw new InvalidArgumentError(`${flag} expects a positive number${unit}`);
    return Number(value);
  };
}

const milliseconds = (flag: string) => positiveInteger(flag, ' of milliseconds');

function positiveNumber(flag: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || !(number > 0)) throw new InvalidArgumentError(`${flag} expects a positive number`);
    return number;
  };
}

function workerCount(value: string): number {
  if (value === 'auto') return availableParallelism();
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('--workers expects a positive number or "auto"');
  return Number(value);
}

function list(value: string): string[] {
  return value.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** "1000000", "64k", "512M", "1G" (powers of 1000, like the default of one gigabyte: 10^9 bytes). */
function byteSize(flag: string) {
  return (value: string): number => {
    const match = /^(\d+)([kMG]?)$/.exec(value.trim());
    const scale = { '': 1, k: 1e3, M: 1e6, G: 1e9 }[match?.[2] ?? ''] ?? 1;
    const bytes = match === null ? NaN : Number(match[1]) * scale;
    if (!(bytes > 0) || !Number.isSafeInteger(bytes)) throw new InvalidArgumentError(`${flag} expects a size in bytes, like 1000000, 64k, 512M or 1G`);
    return bytes;
  };
}

function warcFlags(raw: Record<string, unknown>): WarcArchiverOptions | undefined {
  const dir = raw['warc'] as string | undefined;
  const infoPairs = raw['warcInfo'] as string[];
  if (dir === undefined) {
    const stray = Object.keys(raw).filter((key) => key.startsWith('warc') && key !== 'warcGzip' && key !== 'warcInfo' && raw[key] !== undefined);
    if (stray.length > 0 || infoPairs.length > 0) throw new OptionsError(['--warc-* options need --warc DIR']);
    return undefined;
  }
  const warc: WarcArchiverOptions = { dir, gzip: raw['warcGzip'] !== false };
  if (raw['warcPrefix'] !== undefined) warc.prefix = raw['warcPrefix'] as string;
  if (raw['warcName'] !== undefined) warc.nameTemplate = raw['warcName'] as string;
  if (raw['warcRotateBytes'] !== undefined) warc.rotateBytes = raw['warcRotateBytes'] as number;
  if (raw['warcRotateAge'] !== undefined) warc.rotateAgeMs = raw['warcRotateAge'] as number;
  if (raw['warcGzipLevel'] !== undefined) warc.gzipLevel = raw['warcGzipLevel'] as number;
  if (raw['warcVersion'] !== undefined) warc.warcVersion = raw['warcVersion'] as '1.1' | '1.0';
  if (raw['warcDigest'] !== undefined) warc.digest = raw['warcDigest'] as 'sha1' | 'sha256';
  if (raw['warcMaxRecordBytes'] !== undefined) warc.maxRecordBytes = raw['warcMaxRecordBytes'] as number;
  if (raw['warcMetadata'] === true) warc.metadata = true;
  if (raw['warcRequired'] === true) warc.required = true;
  if (infoPairs.length > 0) {
    warc.info = {};
    for (const pair of infoPairs) {
      const equals = pair.indexOf('=');
      if (equals <= 0) throw new OptionsError([`--warc-info expects key=value, got ${JSON.stringify(pair)}`]);
      warc.info[pair.slice(0, equals).trim()] = pair.slice(equals + 1).trim();
    }
  }
  const dedup = raw['warcDedup'];
  const maxEntries = raw['warcDedupMaxEntries'] as number | undefined;
  if (dedup !== undefined || maxEntries !== undefined) {
    warc.dedup = {};
    if (typeof dedup === 'string') warc.dedup.file = dedup;
    if (maxEntries !== undefined) warc.dedup.maxEntries = maxEntries;
  }
  const problems = warcOptionsProblems(warc);
  if (problems.length > 0) throw new OptionsError(problems.map((problem) => problem.replace(/^warc\./, '--warc: ')));
  return warc;
}


/** Options about where traffic goes and what is done to it: `serve` and `run` both take them. */
function addOutboundOptions(command: Command): Command {
  return command
    .option('--connect-timeout <ms>', 'time to connect to an origin', milliseconds('--connect-timeout'))
    .option('--response-timeout <ms>', 'how long an origin may stay silent mid-request', milliseconds('--response-timeout'))
    .option('--request-body-timeout <ms>', 'how long a client may pause while sending a request body (408)', milliseconds('--request-body-timeout'))
    .option('--tunnel-idle-timeout <ms>', 'tunnels silent both ways for this long are closed', milliseconds('--tunnel-idle-timeout'))
    .option('-u, --upstream <url>', 'upstream proxy (http://, https://, socks5://, socks5h://, user:pass@); repeat for a pool; "env" reads HTTP(S)_PROXY, ALL_PROXY, NO_PROXY', collect, [])
    .addOption(new Option('--strategy <name>', 'how the pool is ordered per request').choices([...STRATEGY_NAMES]))
    .option('--upstream-attempts <n>', 'most upstreams tried for one request or tunnel', positiveInteger('--upstream-attempts'))
    .option('--sticky-ttl <ms>', 'how long sticky strategies keep a key on one upstream', milliseconds('--sticky-ttl'))
    .addOption(new Option('--upstream-proxy-protocol <version>', 'begin connections to upstream proxies with a PROXY protocol header naming the client').choices(['v1', 'v2']))
    .option('--bind <address>', 'local address for direct connections; repeat to rotate', collect, [])
    .option('--mitm', 'intercept HTTPS with certificates signed by the local CA (getaway ca init)')
    .option('--ca-dir <dir>', 'where the interception CA lives', defaultCaDir())
    .option('--mitm-hosts <patterns>', 'comma-separated host patterns to intercept (default: all)', list)
    .option('--mitm-exclude <patterns>', 'comma-separated host patterns never to intercept (alias: --no-mitm-hosts)', list)
    .option('--mitm-upstream-cert', 'copy the names of each origin\'s own certificate into its leaf (one extra connection per host)')
    .option('--ca-bundle <file>', 'extra trusted CA certificates (PEM) for origins and upstreams')
    .option('--insecure-upstream-tls', 'do not verify origins\' certificates (tests only; logged loudly)')
    .option('--connect-ports <ports>', 'ports CONNECT may reach: 443,8443, ranges 8000-8999, or * (default: 443 beyond loopback, any on loopback)')
    .option('--allow-destination <cidr>', 'destination address or CIDR allowed despite internal-address protection; repeatable', collect, [])
    .option('--warc <dir>', 'archive every exchange to WARC files in this directory (HTTPS contents need --mitm)')
    .option('--warc-prefix <prefix>', 'first part of each WARC file name (default: getaway)')
    .option('--warc-name <template>', 'file name template: {prefix} {timestamp} {serial} {pid} {host} {random} (default: {prefix}-{timestamp}-{serial}-{pid}-{host})')
    .option('--warc-rotate-bytes <n>', 'start a new file past this size; suffixes k, M, G (default: 1G)', byteSize('--warc-rotate-bytes'))
    .option('--warc-rotate-age <ms>', 'start a new file once one has been open this long', milliseconds('--warc-rotate-age'))
    .option('--no-warc-gzip', 'write plain .warc files instead of one gzip member per record')
    .option('--warc-gzip-level <n>', 'gzip level 1-9 (default: 6)', positiveInteger('--warc-gzip-level'))
    .addOption(new Option('--warc-version <version>', 'WARC format version').choices(['1.1', '1.0']))
    .addOption(new Option('--warc-digest <algorithm>', 'block and payload digests').choices(['sha1', 'sha256']))
    .option('--warc-info <key=value>', 'a field for every warcinfo record (operator, description, ...); repeatable', collect, [])
    .option('--warc-max-record-bytes <n>', 'cut longer blocks, marked WARC-Truncated: length; suffixes k, M, G', byteSize('--warc-max-record-bytes'))
    .option('--warc-metadata', 'add a metadata record per exchange (client, user, upstream, timings)')
    .option('--warc-dedup [file]', 'store a payload seen before as a revisit record; the index file defaults to DIR/PREFIX-dedup.jsonl')
    .option('--warc-dedup-max-entries <n>', 'payloads the dedup index remembers (default: 100000)', positiveInteger('--warc-dedup-max-entries'))
    .option('--warc-required', 'refuse traffic with 503 while WARC files cannot be written, instead of proxying unarchived');
}

/** The settings those options make, in the library's and the config file's names. */
function outboundSettings(raw: Record<string, unknown>): ServeSettings {
  const flags: ServeSettings = {
    connectTimeoutMs: raw['connectTimeout'] as number | undefined,
    responseTimeoutMs: raw['responseTimeout'] as number | undefined,
    requestBodyIdleTimeoutMs: raw['requestBodyTimeout'] as number | undefined,
    tunnelIdleTimeoutMs: raw['tunnelIdleTimeout'] as number | undefined,
    strategy: raw['strategy'] as ServeSettings['strategy'],
    upstreamAttempts: raw['upstreamAttempts'] as number | undefined,
    stickyTtlMs: raw['stickyTtl'] as number | undefined,
  };
  const upstreams = raw['upstream'] as string[];
  if (upstreams.length === 1 && upstreams[0] === 'env') flags.upstreamEnv = process.env;
  else if (upstreams.includes('env')) throw new OptionsError(['--upstream env: use it alone, not together with upstream URLs']);
  else if (upstreams.length > 0) flags.upstreams = upstreams;
  if (raw['upstreamProxyProtocol'] !== undefined) flags.upstreamProxyProtocol = raw['upstreamProxyProtocol'] as 'v1' | 'v2';
  const bind = raw['bind'] as string[];
  if (bind.length > 0) flags.bind = bind;
  if (raw['mitm'] === true) {
    flags.mitm = { caDir: raw['caDir'] as string };
    if (raw['mitmHosts'] !== undefined) flags.mitm.hosts = raw['mitmHosts'] as string[];
    if (raw['mitmExclude'] !== undefined) flags.mitm.excludeHosts = raw['mitmExclude'] as string[];
    if (raw['mitmUpstreamCert'] === true) flags.mitm.upstreamCert = true;
  }
  if (raw['caBundle'] !== undefined) flags.caBundle = [readFileSync(raw['caBundle'] as string, 'utf8')];
  if (raw['insecureUpstreamTls'] === true) flags.insecureUpstreamTls = true;
  if (raw['connectPorts'] !== undefined) flags.connectPorts = raw['connectPorts'] as string;
  const allowDestinations = raw['allowDestination'] as string[];
  if (allowDestinations.length > 0) flags.allowDestinations = allowDestinations;
  const warc = warcFlags(raw);
  if (warc !== undefined) flags.warc = warc;
  return flags;
}

const program = new Command()
  .name('getaway')
  .enablePositionalOptions()
  .description('A forward HTTP/HTTPS proxy: plain HTTP, CONNECT tunnels and WebSocket, with typed hooks.')
  .version(version);

const serveCommand = program
  .command('serve')
  .description('run the proxy until SIGINT/SIGTERM')
  .option('-l, --listen <host:port>', 'address to listen on (port 0 picks a free one); "none" for a transparent-only proxy', '127.0.0.1:8080')
  .option('--transparent <host:port>', 'also serve traffic Linux redirects here (nftables/iptables REDIRECT or TPROXY; docs/transparent.md)')
  .addOption(new Option('--transparent-mode <mode>', 'how the original destination is known').choices(['redirect', 'tproxy']))
  .option('-c, --config <file>', 'JSON or YAML config file; flags override it')
  .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS as string[]))
  .option('--request-headers-timeout <ms>', 'time a client has to send a request head', milliseconds('--request-headers-timeout'))
  .option('--idle-timeout <ms>', 'idle keep-alive client connections are closed after this', milliseconds('--idle-timeout'))
  .option('--shutdown-grace <ms>', 'on SIGINT/SIGTERM, time allowed for in-flight requests', milliseconds('--shutdown-grace'))
  .option('--max-connections <n>', 'client connections held at once; more get 503', positiveInteger('--max-connections'))
  .option('--max-connections-per-client <n>', 'client connections from one IP address; more get 503', positiveInteger('--max-connections-per-client'))
  .option('--max-tunnels <n>', 'CONNECT tunnels and upgrades open at once; more get 503', positiveInteger('--max-tunnels'))
  .option('--no-kernel-splice', 'copy tunnel and response body bytes in JavaScript instead of letting the kernel move them (splice(2))')
  .option('--admin <host:port>', 'serve /metrics (Prometheus) and /healthz on this address; "9090" means 127.0.0.1:9090')
  .option('-w, --workers <n>', 'processes sharing the listener ("auto": one per core)', workerCount)
  .option('--allow-clients <cidr>', 'client address or CIDR allowed to connect; repeat for more (others are closed unread)', collect, [])
  .option('--auth <user:pass>', 'require Basic proxy authentication with this user; repeat for more users', collect, [])
  .option('--auth-file <file>', 'htpasswd file (bcrypt, SHA-1 or MD5 entries) of proxy users; re-read on SIGHUP')
  .option('--allow-private', 'let clients reach loopback and private networks although listening beyond loopback')
  .option('--accept-proxy-protocol <cidr>', 'behind a balancer: read a PROXY protocol v1/v2 header from these addresses (repeatable); others are closed', collect, [])
  .option('--client-rate <n>', 'requests a second one client address may make (bursts of as many); 429 past it', positiveNumber('--client-rate'))
  .option('--client-concurrency <n>', 'requests and tunnels one client address may have in progress; 503 past it', positiveInteger('--client-concurrency'))
  .option('--user-rate <n>', 'requests a second one authenticated user may make; 429 past it', positiveNumber('--user-rate'))
  .option('--user-concurrency <n>', 'requests and tunnels one user may have in progress; 503 past it', positiveInteger('--user-concurrency'));

addOutboundOptions(serveCommand)
  .action(async (raw: Record<string, unknown>, command: Command) => {
    const flags: ServeCommandOptions = {
      ...outboundSettings(raw),
      config: raw['config'] as string | undefined,
      logLevel: raw['logLevel'] as ServeCommandOptions['logLevel'],
      requestHeadersTimeoutMs: raw['requestHeadersTimeout'] as number | undefined,
      idleTimeoutMs: raw['idleTimeout'] as number | undefined,
      shutdownGraceMs: raw['shutdownGrace'] as number | undefined,
      maxConnections: raw['maxConnections'] as number | undefined,
      maxConnectionsPerClient: raw['maxConnectionsPerClient'] as number | undefined,
      maxTunnels: raw['maxTunnels'] as number | undefined,
      workers: raw['workers'] as number | undefined,
    };
    if (raw['admin'] !== undefined) flags.admin = parseAdmin(raw['admin'], '--admin');
    const allowClients = raw['allowClients'] as string[];
    if (allowClients.length > 0) flags.allowClients = allowClients;
    const users = raw['auth'] as string[];
    if (users.length > 0 || raw['authFile'] !== undefined) {
      flags.auth = { users };
      if (raw['authFile'] !== undefined) flags.auth.file = raw['authFile'] as string;
    }
    if (raw['allowPrivate'] === true) flags.allowPrivate = true;
    if (raw['kernelSplice'] === false) flags.kernelSplice = false;
    const limit = (rate: unknown, concurrent: unknown): RateLimit | undefined =>
      rate === undefined && concurrent === undefined
        ? undefined
        : { ...(rate === undefined ? {} : { rate: rate as number }), ...(concurrent === undefined ? {} : { concurrent: concurrent as number }) };
    const perClient = limit(raw['clientRate'], raw['clientConcurrency']);
    const perUser = limit(raw['userRate'], raw['userConcurrency']);
    if (perClient !== undefined || perUser !== undefined) flags.rateLimits = { ...(perClient ? { perClient } : {}), ...(perUser ? { perUser } : {}) };
    const balancers = raw['acceptProxyProtocol'] as string[];
    if (balancers.length > 0) flags.acceptProxyProtocol = { trusted: balancers };
    // The default --listen must not override a config file's `listen`; only an explicit flag does.
    if (command.getOptionValueSource('listen') === 'cli' || raw['config'] === undefined) {
      Object.assign(flags, parseExplicitListen(String(raw['listen']), '--listen'));
    }
    if (raw['transparent'] !== undefined) flags.transparent = parseTransparent(String(raw['transparent']), raw['transparentMode'], '--transparent');
    else if (raw['transparentMode'] !== undefined) throw new OptionsError(['--transparent-mode: needs --transparent HOST:PORT']);
    await serve(flags);
  });

const runCommand = program
  .command('run')
  .description('run a command behind an audit proxy and report the hosts it reached: getaway run [options] -- <command> [args...]')
  .argument('<command...>', 'the command and its arguments (after --)')
  .option('--report <file>', 'write the report here; .json, .md or .html by extension; repeatable', collect, [])
  .addOption(new Option('--log-level <level>', 'the proxy\'s log level (to stderr)').choices(LOG_LEVELS as string[]).default('warn'))
  .option('--sbom <file>', 'write the dependencies pulled as a CycloneDX JSON SBOM')
  .option('--learn <file>', 'write the hosts the command reached as an allow file (for --allow-file)')
  .option('--allow <pattern>', 'host pattern the command may reach; repeatable', collect, [])
  .option('--allow-file <file>', 'file of host patterns, one per line (# comments); repeatable', collect, [])
  .option('--deny <pattern>', 'host pattern the command may not reach (wins over --allow); repeatable', collect, [])
  .option('--enforce', 'refuse requests outside the policy with 403, and exit non-zero if any was');

addOutboundOptions(runCommand)
  .passThroughOptions()
  .action(async (command: string[], raw: Record<string, unknown>) => {
    const { run } = await import('./run.js');
    const { parsePolicyFile } = await import('../audit/audit-policy.js');
    const allow = [...(raw['allow'] as string[])];
    for (const file of raw['allowFile'] as string[]) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new OptionsError([`--allow-file ${file}: ${(err as Error).message}`]);
      }
      allow.push(...parsePolicyFile(text));
    }
    await run({
      allow,
      deny: raw['deny'] as string[],
      enforce: raw['enforce'] === true,
      ...(raw['learn'] === undefined ? {} : { learn: raw['learn'] as string }),
      command,
      reports: raw['report'] as string[],
      ...(raw['sbom'] === undefined ? {} : { sbom: raw['sbom'] as string }),
      logLevel: raw['logLevel'] as LevelWithSilent,
      proxy: outboundSettings(raw),
    });
  });

const ca = program.command('ca').description('manage the local CA used for HTTPS interception');
const caDirOption = (): Option => new Option('--ca-dir <dir>', 'where the CA lives').default(defaultCaDir());
ca.command('init')
  .description('create a CA (an existing one is kept, never overwritten)')
  .addOption(caDirOption())
  .action(async (options: { caDir: string }) => (await import('./ca.js')).caInit(options.caDir));
ca.command('path')
  .description("print the CA certificate's path")
  .addOption(caDirOption())
  .action(async (options: { caDir: string }) => (await import('./ca.js')).caPath(options.caDir));
ca.command('export')
  .description('print the CA certificate (PEM, or DER with --der)')
  .addOption(caDirOption())
  .option('--der', 'binary DER instead of PEM')
  .action(async (options: { caDir: string; der?: boolean }) => (await import('./ca.js')).caExport(options.caDir, options.der === true));

const warc = program.command('warc').description('work with the WARC files getaway writes');
warc
  .command('index')
  .description('print a CDXJ index of WARC files (what pywb reads), sorted')
  .argument('<files...>', 'WARC files (.warc or .warc.gz)')
  .action(async (files: string[]) => (await import('./warc.js')).warcIndex(files));

// commander reads any --no-x as the negation of --x, so the spelling the docs promise is mapped by hand.
const argv = process.argv.map((arg) => arg.replace(/^--no-mitm-hosts(?==|$)/, '--mitm-exclude'));

program.parseAsync(argv).catch((err: unknown) => {
  if (err instanceof CaError) {
    process.stderr.write(`getaway: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof OptionsError) {
    process.stderr.write(`getaway: ${err.problems.join('\n  ')}\n`);
    process.exit(2);
  }
  if (err instanceof TransparentUnavailableError) {
    process.stderr.write(`getaway: cannot start the transparent listener: ${err.message}\n`);
    process.exit(2);
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    process.stderr.write(`getaway: cannot listen: ${(err as Error).message}\n`);
    process.exit(2);
  }
  process.stderr.write(`getaway: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
