/**
 * The config file: JSON or YAML (chosen by extension), with the option keys of createProxy() plus `listen`
 * ("host:port") and `logLevel`. Validated with messages that name the file and the key.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { checkRouting, checkTls, DURATION_KEYS, LIMIT_KEYS, OptionsError, type ProxyOptions } from './options.js';
import { LOG_LEVELS } from '../log/create-logger.js';
import { ACCESS_KEYS, checkAccess } from './access-options.js';
import type { LevelWithSilent } from 'pino';
import { WARC_OPTION_KEYS, warcOptionsProblems, type WarcArchiverOptions } from './warc-options.js';

/** What `getaway serve` takes from a config file or flags: the library options plus the listener and log level. */
export type ServeSettings = Omit<ProxyOptions, 'addons' | 'logger'> & {
  logLevel?: LevelWithSilent;
  /** Where the admin endpoint (/metrics, /healthz) listens; off when absent. */
  admin?: { host: string; port: number };
  /** Archive every exchange to WARC files (the warc-archiver addon). */
  warc?: WarcArchiverOptions;
};

const ROUTING_FILE_KEYS = new Set<string>(['upstreams', 'strategy', 'routes', 'bind', 'mitm', 'upstreamProxyProtocol']);
const FILE_KEYS = new Set<string>(['listen', 'transparent', 'admin', 'logLevel', 'warc', 'kernelSplice', ...DURATION_KEYS, ...LIMIT_KEYS, ...ROUTING_FILE_KEYS, ...ACCESS_KEYS]);
const DURATIONS = new Set<string>(DURATION_KEYS);

/**
 * `listen` (and `--listen`), where "none" turns the explicit port off (a transparent-only proxy) and anything else
 * is an address for parseListen.
 */
export function parseExplicitListen(value: string, where: string): { host?: string; port?: number; explicit?: false } {
  return value.trim() === 'none' ? { explicit: false } : parseListen(value, where);
}

/** `transparent` (and `--transparent`): HOST:PORT, with the mode "redirect" (SO_ORIGINAL_DST) or "tproxy". */
export function parseTransparent(value: string, mode: unknown, where: string): { host: string; port: number; mode: 'tproxy' | 'redirect' } {
  const { host, port } = parseListen(value, where);
  const chosen = mode ?? 'redirect';
  if (chosen !== 'tproxy' && chosen !== 'redirect') throw new OptionsError([`${where}: mode: expected "tproxy" or "redirect", got ${JSON.stringify(mode)}`]);
  return { host: host ?? '127.0.0.1', port, mode: chosen };
}

/** "127.0.0.1:8080", "[::1]:8080", ":8080" or "8080" (the last two keep the default host). */
export function parseListen(value: string, where: string): { host?: string; port: number } {
  const text = value.trim();
  let host: string | undefined;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1];
    portText = bracketed[2]!;
  } else if (/^\d+$/.test(text)) {
    portText = text;
  } else {
    const colon = text.lastIndexOf(':');
    host = colon > 0 ? text.slice(0, colon) : undefined;
    portText = colon === -1 ? '' : text.slice(colon + 1);
    if (host?.includes(':')) portText = '';
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new OptionsError([`${where}: expected HOST:PORT (for example 127.0.0.1:8080, [::1]:8080 or 0.0.0.0:0), got ${JSON.stringify(value)}`]);
  }
  return host === undefined ? { port } : { host, port };
}

/** The admin address: like `listen`, but on loopback unless a host is given (metrics are not for the network). */
export function parseAdmin(value: unknown, where: string): { host: string; port: number } {
  if (typeof value !== 'string' && typeof value !== 'number') throw new OptionsError([`${where}: expected "HOST:PORT", got ${JSON.stringify(value)}`]);
  const { host, port } = parseListen(String(value), where);
  return { host: host ?? '127.0.0.1', port };
}

export async function loadConfigFile(path: string): Promise<ServeSettings> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new OptionsError([`${path}: cannot read config file (${err.code ?? err.message})`]);
  });
  let data: unknown;
  const yaml = ['.yaml', '.yml'].includes(extname(path).toLowerCase());
  // The YAML parser is loaded only for YAML files (a proxy's start-up heap matters, see core/proxy.ts).
  const parseYaml = yaml ? (await import('yaml')).parse : undefined;
  try {
    data = parseYaml !== undefined ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new OptionsError([`${path}: not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`]);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new OptionsError([`${path}: expected a mapping of options at the top level`]);
  const problems: string[] = [];
  const settings: ServeSettings = {};
  for (const [key, value] of Object.entries(data)) {
    if (!FILE_KEYS.has(key)) {
      problems.push(`${path}: unknown key "${key}" (known: ${[...FILE_KEYS].join(', ')})`);
    } else if (key === 'listen') {
      if (typeof value !== 'string' && typeof value !== 'number') problems.push(`${path}: listen: expected "HOST:PORT", got ${JSON.stringify(value)}`);
      else {
        try {
          Object.assign(settings, parseExplicitListen(String(value), `${path}: listen`));
        } catch (err) {
          problems.push(...(err as OptionsError).problems);
        }
      }
    } else if (key === 'transparent') {
      // `transparent: { listen: "0.0.0.0:3129", mode: tproxy }`, or just the address.
      const spec = typeof value === 'string' || typeof value === 'number' ? { listen: value } : value;
      if (spec === null || typeof spec !== 'object' || Array.isArray(spec) || !('listen' in spec)) {
        problems.push(`${path}: transparent: expected "HOST:PORT" or a mapping { listen, mode }`);
      } else {
        const { listen, mode, ...rest } = spec as Record<string, unknown>;
        for (const name of Object.keys(rest)) problems.push(`${path}: transparent: unknown key "${name}" (known: listen, mode)`);
        try {
          settings.transparent = parseTransparent(String(listen), mode, `${path}: transparent`);
        } catch (err) {
          problems.push(...(err as OptionsError).problems);
        }
      }
    } else if (key === 'admin') {
      try {
        settings.admin = parseAdmin(value, `${path}: admin`);
      } catch (err) {
        problems.push(...(err as OptionsError).problems);
      }
    } else if (key === 'warc') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) problems.push(`${path}: warc: expected a mapping with at least "dir"`);
      else {
        const unknown = Object.keys(value).filter((name) => !(WARC_OPTION_KEYS as readonly string[]).includes(name));
        for (const name of unknown) problems.push(`${path}: warc: unknown key "${name}" (known: ${WARC_OPTION_KEYS.join(', ')})`);
        problems.push(...warcOptionsProblems(value as WarcArchiverOptions).map((problem) => `${path}: ${problem}`));
        settings.warc = value as WarcArchiverOptions;
      }
    } else if (key === 'upstreams' && value === 'env') {
      // `upstreams: env` is the file's spelling of `--upstream env`.
      settings.upstreamEnv = process.env;
    } else if (ROUTING_FILE_KEYS.has(key) || (ACCESS_KEYS as readonly string[]).includes(key)) {
      (settings as Record<string, unknown>)[key] = value;
    } else if (key === 'kernelSplice') {
      if (typeof value !== 'boolean') problems.push(`${path}: kernelSplice: expected true or false, got ${JSON.stringify(value)}`);
      else settings.kernelSplice = value;
    } else if (key === 'logLevel') {
      if (typeof value !== 'string' || !(LOG_LEVELS as readonly string[]).includes(value)) {
        problems.push(`${path}: logLevel: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`);
      } else settings.logLevel = value as LevelWithSilent;
    } else {
      if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
        const unit = DURATIONS.has(key) ? ' number of milliseconds' : '';
        problems.push(`${path}: ${key}: expected a positive integer${unit}, got ${JSON.stringify(value)}`);
      } else settings[key as (typeof DURATION_KEYS)[number] | (typeof LIMIT_KEYS)[number]] = value;
    }
  }
  problems.push(...checkRouting(settings, path));
  problems.push(...checkTls(settings, path));
  problems.push(...checkAccess(settings, path));
  if (problems.length > 0) throw new OptionsError(problems);
  return settings;
}
