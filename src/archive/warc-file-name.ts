/**
 * WARC file names from a template, so that several processes or machines writing to one directory never pick
 * the same name: {prefix}, {timestamp} (UTC, to the millisecond: 20261202205421123), {serial} (this writer's
 * file count, 5 digits), {pid}, {host} (the hostname, reduced to [A-Za-z0-9.-]) and {random} (8 hex digits).
 */
import { randomBytes } from 'node:crypto';

export const DEFAULT_NAME_TEMPLATE = '{prefix}-{timestamp}-{serial}-{pid}-{host}';
const PLACEHOLDERS = ['prefix', 'timestamp', 'serial', 'pid', 'host', 'random'] as const;

export interface FileNameParts {
  prefix: string;
  epochMs: number;
  serial: number;
  pid: number;
  host: string;
}

/** Why a template cannot be used, or undefined. A name must change from one file to the next. */
export function templateProblem(template: string): string | undefined {
  for (const match of template.matchAll(/\{([^}]*)\}/g)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(match[1]!)) return `unknown placeholder {${match[1]}} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`;
  }
  if (!/\{(serial|timestamp|random)\}/.test(template)) return 'the name must contain {serial}, {timestamp} or {random}, or every file would get the same name';
  if (/[/\\]/.test(template.replace(/\{[^}]*\}/g, ''))) return 'the name may not contain a path separator';
  return undefined;
}

export function sanitizeHost(host: string): string {
  return host.replace(/[^A-Za-z0-9.-]/g, '-') || 'host';
}

function timestamp(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/[-:T.Z]/g, '');
}

/** The base name, without the .warc/.warc.gz extension or the .open suffix. */
export function renderFileName(template: string, parts: FileNameParts): string {
  return template.replace(/\{(\w+)\}/g, (_all, name: string) => {
    switch (name) {
      case 'prefix':
        return parts.prefix;
      case 'timestamp':
        return timestamp(parts.epochMs);
      case 'serial':
        return String(parts.serial).padStart(5, '0');
      case 'pid':
        return String(parts.pid);
      case 'host':
        return sanitizeHost(parts.host);
      case 'random':
        return randomBytes(4).toString('hex');
      default:
        return `{${name}}`;
    }
  });
}
