/**
 * `getaway run [options] -- <command> [args...]`: runs a command behind an ephemeral audit proxy on a free
 * loopback port and reports what it reached. The command gets the proxy through its environment
 * (audit/proxy-environment.ts), stdio passes through, signals sent to getaway go on to it, and getaway exits with
 * its exit code (128 + the signal number when a signal ended it). The arguments go to the command as a vector,
 * never through a shell.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { LevelWithSilent } from 'pino';
import type { Addon } from '../core/addon.js';
import { createProxy } from '../core/proxy.js';
import { OptionsError } from '../config/options.js';
import type { ServeSettings } from '../config/config-file.js';
import { createLogger } from '../log/create-logger.js';
import { AuditRecorder } from '../audit/audit-recorder.js';
import { buildReport, displayCommand, formatCycloneDx, formatReport, formatSummary, reportFormatFor } from '../audit/audit-report.js';
import { createRequire } from 'node:module';

const { version: getawayVersion } = createRequire(import.meta.url)('../../../package.json') as { version: string };
import { proxyEnvironment } from '../audit/proxy-environment.js';
import { AuditPolicy, formatLearnedHosts } from '../audit/audit-policy.js';

export interface RunOptions {
  command: string[];
  /** Files to write the report to; the extension picks the format (.json, .md, .html). */
  reports: string[];
  /** Where to write the dependencies pulled as a CycloneDX JSON SBOM. */
  sbom?: string;
  logLevel: LevelWithSilent;
  /**
   * The proxy's settings, from the options `run` shares with `serve` (timeouts, upstreams, interception, WARC,
   * destinations). With `mitm`, its CA is created in `mitm.caDir` if missing and the command is told to trust it.
   */
  proxy: Omit<ServeSettings, 'admin' | 'logLevel'>;
  /** Host patterns the command may reach (--allow, and the lines of each --allow-file). */
  allow: string[];
  deny: string[];
  /** Refuse what the policy does not allow, and exit non-zero when anything was. */
  enforce: boolean;
  /** Write the hosts reached here, as an allow file. */
  learn?: string;
}

/** The variables TLS clients read for the CAs to trust; each gets a bundle of the usual roots plus getaway's CA. */
const TRUST_VARIABLES = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PIP_CERT', 'npm_config_cafile', 'CARGO_HTTP_CAINFO', 'AWS_CA_BUNDLE', 'DENO_CERT'];
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

export async function run(options: RunOptions): Promise<never> {
  if (options.command.length === 0) throw new OptionsError(['getaway run: give the command after --, for example: getaway run -- npm ci']);
  for (const file of options.reports) {
    if (reportFormatFor(file) === undefined) throw new OptionsError([`--report ${file}: the name must end in .json, .md or .html`]);
  }
  const logger = createLogger({ level: options.logLevel, pretty: process.stderr.isTTY === true, stderr: true });
  const recorder = new AuditRecorder();
  let policy: AuditPolicy;
  try {
    policy = new AuditPolicy({ allow: options.allow, deny: options.deny, enforce: options.enforce });
  } catch (err) {
    throw new OptionsError([(err as Error).message]);
  }
  if (options.enforce && policy.isEmpty) throw new OptionsError(['--enforce needs a policy: --allow, --allow-file or --deny']);
  // The policy decides before the recorder sees anything: a refused request is recorded as refused.
  const addons: Addon[] = policy.isEmpty ? [recorder.addon()] : [policy.addon(), recorder.addon()];
  const { warc, ...settings } = options.proxy;
  if (warc !== undefined) {
    const { warcArchiver } = await import('../addons/warc-archiver.js');
    const archive = warcArchiver(warc);
    await archive.open().catch((err: Error) => {
      throw new OptionsError([`--warc: ${err.message}`]);
    });
    addons.push(archive);
  }
  // The CA first: the proxy loads it when it starts (created here on first use, like `getaway ca init`).
  const caDir = settings.mitm?.caDir;
  const ca = caDir === undefined ? undefined : (await (await import('../mitm/certificate-authority.js')).initCertificateAuthority(caDir)).ca;
  // Loopback only, whatever was asked for: the proxy is the command's, nobody else's.
  const proxy = createProxy({ shutdownGraceMs: 2000, ...settings, host: '127.0.0.1', port: 0, logger, addons });
  const address = await proxy.listen();
  const env = proxyEnvironment(process.env, { proxyUrl: proxy.url, host: address.address, port: address.port });
  let trustDir: string | undefined;
  if (ca !== undefined) {
    trustDir = await mkdtemp(join(tmpdir(), 'getaway-run-'));
    const ours = join(trustDir, 'getaway-ca.pem');
    const bundle = join(trustDir, 'ca-bundle.pem');
    await writeFile(ours, ca.certPem);
    // Node's own roots (Mozilla's list) and ours: a client told to trust only this file still reaches the world.
    await writeFile(bundle, `${rootCertificates.join('\n')}\n${ca.certPem}`);
    env['NODE_EXTRA_CA_CERTS'] = ours;
    for (const name of TRUST_VARIABLES) env[name] = bundle;
  }

  const startedAt = new Date();
  const child = spawn(options.command[0]!, options.command.slice(1), { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; spawnError?: Error }>((resolve) => {
    child.once('error', (err) => resolve({ code: null, signal: null, spawnError: err }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
  await proxy.close();
  if (trustDir !== undefined) await rm(trustDir, { recursive: true, force: true });
  const endedAt = new Date();
  const report = buildReport({
    command: options.command,
    exitCode: outcome.code,
    signal: outcome.signal,
    startedAt: startedAt.toISOString(),
    endedAt: endedAt.toISOString(),
    durationMs: endedAt.getTime() - startedAt.getTime(),
    intercepted: caDir !== undefined,
    hosts: recorder.hosts,
    denied: recorder.denied,
    dependencies: recorder.dependencies,
    policy: policy.isEmpty ? undefined : { enforce: options.enforce, violations: policy.violations },
  });
  for (const file of options.reports) await writeFile(file, formatReport(report, reportFormatFor(file)!));
  if (options.sbom !== undefined) await writeFile(options.sbom, formatCycloneDx(report, getawayVersion));
  if (options.learn !== undefined) await writeFile(options.learn, formatLearnedHosts(report.hosts.map((h) => hostName(h.host)), displayCommand(report.command)));
  if (outcome.spawnError !== undefined) {
    process.stderr.write(`getaway run: cannot run ${options.command[0]}: ${outcome.spawnError.message}\n`);
    // What a shell answers for a command it cannot find or run.
    process.exit((outcome.spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : 126);
  }
  process.stderr.write(formatSummary(report));
  const signalNumber = outcome.signal === null ? 0 : (osConstants.signals[outcome.signal] ?? 0);
  const code = outcome.code ?? 128 + signalNumber;
  // A command that got by despite refusals still broke the policy: the run fails, so CI notices.
  if (code === 0 && options.enforce && policy.violations.length > 0) {
    process.stderr.write(`getaway run: ${policy.violations.length} requests outside the policy were refused\n`);
    process.exit(1);
  }
  process.exit(code);
}

/** "registry.npmjs.org:443" → "registry.npmjs.org"; "[::1]:80" → "::1". */
function hostName(hostPort: string): string {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(hostPort);
  return bracketed !== null ? bracketed[1]! : hostPort.replace(/:\d+$/, '');
}
