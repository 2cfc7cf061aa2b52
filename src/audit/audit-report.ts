/**
 * The report of one `getaway run`: what the command reached, and how it ended. Pure: a report value in, text out,
 * as JSON, Markdown, a self-contained HTML page (no scripts, no external resources), or the short summary printed
 * on stderr.
 */
import { randomUUID } from 'node:crypto';
import { redactArgument, type DeniedRequest, type HostActivity, type PulledDependency } from './audit-recorder.js';
import type { PolicyViolation } from './audit-policy.js';

export interface AuditReport {
  /** The command as an argument vector, with URLs' secrets and credential headers redacted. */
  command: string[];
  exitCode: number | null;
  signal: string | null;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  /** Whether HTTPS was intercepted (full URLs) or only tunnelled (host:port). */
  intercepted: boolean;
  totals: { hosts: number; requests: number; tunnels: number; bytesUp: number; bytesDown: number; denied: number; dependencies: number };
  hosts: HostActivity[];
  /** Packages downloaded (recognised from plain HTTP or intercepted URLs), with the sha256 of the bytes that passed. */
  dependencies: PulledDependency[];
  /** With a policy (--allow, --allow-file, --deny): whether it was enforced, and every request outside it. */
  policy: { enforce: boolean; violations: PolicyViolation[] } | undefined;
  denied: DeniedRequest[];
}

export type ReportFormat = 'json' | 'markdown' | 'html';

/** The format a report file's name asks for, or undefined for an extension no format has. */
export function reportFormatFor(path: string): ReportFormat | undefined {
  if (/\.json$/i.test(path)) return 'json';
  if (/\.(md|markdown)$/i.test(path)) return 'markdown';
  if (/\.html?$/i.test(path)) return 'html';
  return undefined;
}

/** The report: totals added, and secrets taken out of the command line (redactArgument). */
export function buildReport(parts: Omit<AuditReport, 'totals'>): AuditReport {
  const totals = { hosts: parts.hosts.length, requests: 0, tunnels: 0, bytesUp: 0, bytesDown: 0, denied: parts.denied.length, dependencies: parts.dependencies.length };
  for (const host of parts.hosts) {
    totals.requests += host.requests;
    totals.tunnels += host.tunnels;
    totals.bytesUp += host.bytesUp;
    totals.bytesDown += host.bytesDown;
  }
  return { ...parts, command: parts.command.map(redactArgument), totals };
}

function statuses(host: HostActivity): string {
  return Object.entries(host.statuses)
    .map(([status, count]) => `${status}×${count}`)
    .join(' ');
}

/** The command as one line: arguments with spaces, quotes or line breaks are shown JSON-quoted, and long ones cut. */
export function displayCommand(command: readonly string[]): string {
  const line = command.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ');
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

function ended(report: AuditReport): string {
  return report.signal !== null ? `killed by ${report.signal}` : `exit ${report.exitCode}`;
}

/** A few lines for stderr: totals, then the busiest hosts. */
export function formatSummary(report: AuditReport, maxHosts = 10): string {
  const { totals } = report;
  const lines = [
    `getaway run: ${displayCommand(report.command)} → ${ended(report)} in ${(report.durationMs / 1000).toFixed(1)} s`,
    `  ${totals.hosts} hosts, ${totals.requests} requests, ${totals.tunnels} tunnels, ${totals.bytesUp} bytes up, ${totals.bytesDown} bytes down${totals.denied > 0 ? `, ${totals.denied} denied` : ''}`,
  ];
  for (const host of report.hosts.slice(0, maxHosts)) {
    lines.push(`  ${host.host}  ${host.requests} req, ${host.tunnels} tunnels, ${host.bytesDown} bytes down  ${statuses(host)}`);
  }
  if (report.hosts.length > maxHosts) lines.push(`  … and ${report.hosts.length - maxHosts} more hosts`);
  if (report.dependencies.length > 0) lines.push(`  ${report.dependencies.length} dependencies pulled: ${report.dependencies.slice(0, maxHosts).map((d) => d.purl).join(', ')}${report.dependencies.length > maxHosts ? ', …' : ''}`);
  for (const denied of report.denied.slice(0, maxHosts)) lines.push(`  denied: ${denied.method} ${denied.target} (${denied.reason})`);
  const noted = report.policy !== undefined && !report.policy.enforce ? report.policy.violations : [];
  for (const v of noted.slice(0, maxHosts)) lines.push(`  outside the policy (not enforced): ${v.method} ${v.target} (${v.rule})`);
  return `${lines.join('\n')}\n`;
}

/** A table cell: pipes and line breaks would break the row. */
function cell(text: string | number): string {
  return String(text).replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
}

export function formatMarkdown(report: AuditReport): string {
  const { totals } = report;
  const lines = [
    '# getaway run report',
    '',
    `Command: \`${displayCommand(report.command).replace(/`/g, "'")}\` → ${ended(report)}, ${report.startedAt} to ${report.endedAt}.`,
    `HTTPS ${report.intercepted ? 'intercepted: full URLs' : 'tunnelled: host and port only'}.`,
    '',
    `${totals.hosts} hosts, ${totals.requests} requests, ${totals.tunnels} tunnels, ${totals.bytesUp} bytes up, ${totals.bytesDown} bytes down, ${totals.denied} denied.`,
    '',
    '## Hosts',
    '',
    '| host | schemes | requests | tunnels | bytes up | bytes down | methods | statuses | first | last |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...report.hosts.map((h) => `| ${cell(h.host)} | ${h.schemes.join(', ')} | ${h.requests} | ${h.tunnels} | ${h.bytesUp} | ${h.bytesDown} | ${h.methods.join(', ')} | ${statuses(h)} | ${h.first} | ${h.last} |`),
  ];
  if (report.dependencies.length > 0) {
    lines.push('', '## Dependencies pulled', '', '| ecosystem | name | version | purl | size | sha256 | url |', '|---|---|---|---|---|---|---|');
    for (const d of report.dependencies) lines.push(`| ${d.ecosystem} | ${cell(d.name)} | ${cell(d.version)} | ${cell(d.purl)} | ${d.size} | ${d.sha256} | ${cell(d.url)} |`);
  }
  const withUrls = report.hosts.filter((h) => h.urls.length > 0);
  if (withUrls.length > 0) {
    lines.push('', '## URLs', '');
    for (const host of withUrls) {
      lines.push(`### ${cell(host.host)}`, '', ...host.urls.map((url) => `- ${url.replace(/[\r\n]/g, '')}`));
      if (host.moreUrls > 0) lines.push(`- … and ${host.moreUrls} requests to URLs past the first 1,000`);
      lines.push('');
    }
  }
  if (report.policy !== undefined && report.policy.violations.length > 0) {
    lines.push('', `## Outside the policy (${report.policy.enforce ? 'refused' : 'not enforced'})`, '', '| time | method | target | rule |', '|---|---|---|---|');
    for (const v of report.policy.violations) lines.push(`| ${v.time} | ${v.method} | ${cell(v.target)} | ${cell(v.rule)} |`);
  }
  if (report.denied.length > 0) {
    lines.push('', '## Denied', '', '| time | method | target | reason | details |', '|---|---|---|---|---|');
    for (const d of report.denied) lines.push(`| ${d.time} | ${d.method} | ${cell(d.target)} | ${d.reason} | ${cell(d.details)} |`);
  }
  return `${lines.join('\n')}\n`;
}

function escapeHtml(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function formatHtml(report: AuditReport): string {
  const { totals } = report;
  const row = (cells: Array<string | number>): string => `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
  const hosts = report.hosts.map((h) => row([h.host, h.schemes.join(', '), h.requests, h.tunnels, h.bytesUp, h.bytesDown, h.methods.join(', '), statuses(h), h.first, h.last])).join('\n');
  const urls = report.hosts
    .filter((h) => h.urls.length > 0)
    .map((h) => `<h3>${escapeHtml(h.host)}</h3><ul>${h.urls.map((u) => `<li>${escapeHtml(u)}</li>`).join('')}${h.moreUrls > 0 ? `<li>… and ${h.moreUrls} requests to URLs past the first 1,000</li>` : ''}</ul>`)
    .join('\n');
  const denied = report.denied.map((d) => row([d.time, d.method, d.target, d.reason, d.details])).join('\n');
  const violations = (report.policy?.violations ?? []).map((v) => row([v.time, v.method, v.target, v.rule, v.refused ? 'refused' : 'noted'])).join('\n');
  const dependencies = report.dependencies.map((d) => row([d.ecosystem, d.name, d.version, d.purl, d.size, d.sha256, d.url])).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>getaway run report</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}th{background:#eee}</style>
</head><body>
<h1>getaway run report</h1>
<p>Command: <code>${escapeHtml(displayCommand(report.command))}</code> → ${escapeHtml(ended(report))}, ${escapeHtml(report.startedAt)} to ${escapeHtml(report.endedAt)}. HTTPS ${report.intercepted ? 'intercepted: full URLs' : 'tunnelled: host and port only'}.</p>
<p id="totals">${totals.hosts} hosts, ${totals.requests} requests, ${totals.tunnels} tunnels, ${totals.bytesUp} bytes up, ${totals.bytesDown} bytes down, ${totals.denied} denied.</p>
<h2>Hosts</h2>
<table id="hosts"><thead><tr><th>host</th><th>schemes</th><th>requests</th><th>tunnels</th><th>bytes up</th><th>bytes down</th><th>methods</th><th>statuses</th><th>first</th><th>last</th></tr></thead>
<tbody>
${hosts}
</tbody></table>
${dependencies === '' ? '' : `<h2>Dependencies pulled</h2>\n<table id="dependencies"><thead><tr><th>ecosystem</th><th>name</th><th>version</th><th>purl</th><th>size</th><th>sha256</th><th>url</th></tr></thead><tbody>\n${dependencies}\n</tbody></table>`}
${urls === '' ? '' : `<h2>URLs</h2>\n${urls}`}
${violations === '' ? '' : `<h2>Outside the policy</h2>\n<table id="policy"><thead><tr><th>time</th><th>method</th><th>target</th><th>rule</th><th>outcome</th></tr></thead><tbody>\n${violations}\n</tbody></table>`}
${denied === '' ? '' : `<h2>Denied</h2>\n<table id="denied"><thead><tr><th>time</th><th>method</th><th>target</th><th>reason</th><th>details</th></tr></thead><tbody>\n${denied}\n</tbody></table>`}
</body></html>
`;
}

export function formatReport(report: AuditReport, format: ReportFormat): string {
  if (format === 'json') return `${JSON.stringify(report, null, 2)}\n`;
  return format === 'markdown' ? formatMarkdown(report) : formatHtml(report);
}

/**
 * The dependencies as a CycloneDX 1.5 JSON SBOM (cyclonedx.org/docs/1.5/json): one library component per package,
 * with its purl, the SHA-256 of the bytes that passed, and the URL as a distribution reference.
 */
export function formatCycloneDx(report: AuditReport, toolVersion: string): string {
  const components = report.dependencies.map((d) => {
    const maven = d.ecosystem === 'maven' ? d.name.split(':') : undefined;
    const scoped = d.ecosystem === 'npm' && d.name.startsWith('@') ? d.name.split('/') : undefined;
    return {
      type: 'library',
      'bom-ref': `${d.purl}#${d.sha256.slice(0, 12)}`,
      ...(maven ? { group: maven[0], name: maven[1] } : scoped ? { group: scoped[0], name: scoped[1] } : { name: d.name }),
      version: d.version,
      purl: d.purl,
      hashes: [{ alg: 'SHA-256', content: d.sha256 }],
      externalReferences: [{ type: 'distribution', url: d.url }],
    };
  });
  const bom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: report.endedAt,
      tools: { components: [{ type: 'application', name: 'getaway', version: toolVersion }] },
      component: { type: 'application', name: displayCommand(report.command) },
    },
    components,
  };
  return `${JSON.stringify(bom, null, 2)}\n`;
}
