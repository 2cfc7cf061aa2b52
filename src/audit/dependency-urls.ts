/**
 * Recognises a downloaded package from the URL it was fetched from, the way the common registries lay out their
 * files, and names it as a package URL (purl, github.com/package-url/purl-spec). Pure: a URL in, a dependency or
 * undefined out. Layouts are matched by path shape, not by host, so mirrors and private registries that keep the
 * public layout (Verdaccio, devpi, Artifactory, Nexus, Athens, apt mirrors) are recognised too.
 */

export type Ecosystem = 'npm' | 'pypi' | 'cargo' | 'golang' | 'maven' | 'gem' | 'deb' | 'github' | 'oci';

export interface Dependency {
  ecosystem: Ecosystem;
  name: string;
  version: string;
  purl: string;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** purl name and namespace segments are percent-encoded (the spec's rules, for the characters registries use). */
function purlSegment(text: string): string {
  return encodeURIComponent(text).replace(/%2F/gi, '/');
}

function npm(segments: string[]): Dependency | undefined {
  // /<name>/-/<basename>-<version>.tgz and /@scope/<name>/-/<name>-<version>.tgz
  const dash = segments.indexOf('-');
  if (dash < 1 || dash !== segments.length - 2 || !segments[dash + 1]!.endsWith('.tgz')) return undefined;
  const nameParts = segments.slice(0, dash);
  if (nameParts.length > 2 || (nameParts.length === 2 && !nameParts[0]!.startsWith('@'))) return undefined;
  const name = nameParts.join('/');
  const base = nameParts[nameParts.length - 1]!;
  const file = segments[dash + 1]!.slice(0, -'.tgz'.length);
  if (!file.startsWith(`${base}-`)) return undefined;
  const version = file.slice(base.length + 1);
  if (!/^\d/.test(version)) return undefined;
  const purl = nameParts.length === 2 ? `pkg:npm/${purlSegment(nameParts[0]!)}/${purlSegment(base)}@${purlSegment(version)}` : `pkg:npm/${purlSegment(name)}@${purlSegment(version)}`;
  return { ecosystem: 'npm', name, version, purl };
}

/** PEP 503 normalisation, which purl asks for too. */
function pypiName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

function pypi(file: string): Dependency | undefined {
  // Wheels: {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl (PEP 427); sdists: {name}-{version}.tar.gz|.zip
  const wheel = /^([A-Za-z0-9_.]+)-([0-9][^-]*)-(?:\d[^-]*-)?[^-]+-[^-]+-[^-]+\.whl$/.exec(file);
  const sdist = wheel ? undefined : /^([A-Za-z0-9_.-]+?)-([0-9][A-Za-z0-9_.!+]*)\.(?:tar\.gz|zip|tar\.bz2)$/.exec(file);
  const match = wheel ?? sdist;
  if (!match) return undefined;
  const name = pypiName(match[1]!);
  return { ecosystem: 'pypi', name, version: match[2]!, purl: `pkg:pypi/${purlSegment(name)}@${purlSegment(match[2]!)}` };
}

function cargo(segments: string[]): Dependency | undefined {
  // /api/v1/crates/<name>/<version>/download, and static.crates.io's /crates/<name>/<name>-<version>.crate
  const api = segments.join('/').match(/(?:^|\/)api\/v1\/crates\/([^/]+)\/([^/]+)\/download$/);
  if (api) return { ecosystem: 'cargo', name: api[1]!, version: api[2]!, purl: `pkg:cargo/${purlSegment(api[1]!)}@${purlSegment(api[2]!)}` };
  const file = segments[segments.length - 1]!;
  const name = segments[segments.length - 2];
  if (name === undefined || !file.endsWith('.crate') || !file.startsWith(`${name}-`)) return undefined;
  const version = file.slice(name.length + 1, -'.crate'.length);
  return { ecosystem: 'cargo', name, version, purl: `pkg:cargo/${purlSegment(name)}@${purlSegment(version)}` };
}

/** The Go module proxy's case encoding: "!x" stands for "X" (go.dev/ref/mod#goproxy-protocol). */
function unescapeModule(path: string): string {
  return path.replace(/!([a-z])/g, (_all, letter: string) => letter.toUpperCase());
}

function golang(segments: string[]): Dependency | undefined {
  // /<module>/@v/<version>.zip (the module's source, what a build downloads)
  const at = segments.indexOf('@v');
  if (at < 1 || at !== segments.length - 2 || !segments[at + 1]!.endsWith('.zip')) return undefined;
  const module = unescapeModule(segments.slice(0, at).join('/'));
  const version = unescapeModule(segments[at + 1]!.slice(0, -'.zip'.length));
  return { ecosystem: 'golang', name: module, version, purl: `pkg:golang/${purlSegment(module)}@${purlSegment(version)}` };
}

function maven(segments: string[]): Dependency | undefined {
  // .../<group as path>/<artifact>/<version>/<artifact>-<version>[-classifier].<jar|pom|aar|war>
  if (segments.length < 4) return undefined;
  const file = segments[segments.length - 1]!;
  const version = segments[segments.length - 2]!;
  const artifact = segments[segments.length - 3]!;
  if (!/\.(jar|aar|war)$/.test(file) || !file.startsWith(`${artifact}-${version}`) || !/^\d/.test(version)) return undefined;
  // The group: the path up to the artifact, after a repository root such as /maven2/ or /repository/<name>/.
  let group = segments.slice(0, -3);
  const root = group.findIndex((s) => s === 'maven2' || s === 'm2');
  if (root !== -1) group = group.slice(root + 1);
  else if (group[0] === 'repository' && group.length > 2) group = group.slice(2);
  if (group.length === 0) return undefined;
  const groupId = group.join('.');
  return { ecosystem: 'maven', name: `${groupId}:${artifact}`, version, purl: `pkg:maven/${purlSegment(groupId)}/${purlSegment(artifact)}@${purlSegment(version)}` };
}

function gem(segments: string[]): Dependency | undefined {
  // /gems/<name>-<version>[-platform].gem
  if (segments[segments.length - 2] !== 'gems') return undefined;
  const match = /^(.+?)-(\d[A-Za-z0-9.]*)(?:-[a-z0-9_-]+)?\.gem$/.exec(segments[segments.length - 1]!);
  if (!match) return undefined;
  return { ecosystem: 'gem', name: match[1]!, version: match[2]!, purl: `pkg:gem/${purlSegment(match[1]!)}@${purlSegment(match[2]!)}` };
}

function deb(host: string, segments: string[]): Dependency | undefined {
  // /…/pool/<component>/<prefix>/<source>/<name>_<version>_<arch>.deb
  if (!segments.includes('pool')) return undefined;
  const match = /^([a-z0-9][a-z0-9+.-]*)_([^_]+)_([a-z0-9-]+)\.deb$/.exec(segments[segments.length - 1]!);
  if (!match) return undefined;
  const vendor = /ubuntu/i.test(host) ? 'ubuntu' : 'debian';
  const version = match[2]!.replace(/%3a/gi, ':');
  return { ecosystem: 'deb', name: match[1]!, version, purl: `pkg:deb/${vendor}/${purlSegment(match[1]!)}@${purlSegment(version)}?arch=${match[3]}` };
}

function github(host: string, segments: string[]): Dependency | undefined {
  // github.com/<owner>/<repo>/releases/download/<tag>/<asset>
  if (host !== 'github.com' || segments.length !== 6 || segments[2] !== 'releases' || segments[3] !== 'download') return undefined;
  const [owner, repo, , , tag] = segments as [string, string, string, string, string, string];
  return { ecosystem: 'github', name: `${owner}/${repo}`, version: tag, purl: `pkg:github/${purlSegment(owner)}/${purlSegment(repo)}@${purlSegment(tag)}` };
}

function oci(host: string, segments: string[]): Dependency | undefined {
  // /v2/<name>/manifests/<tag or digest> (OCI distribution spec): the image a pull asked for.
  if (segments[0] !== 'v2' || segments.length < 4 || segments[segments.length - 2] !== 'manifests') return undefined;
  const name = segments.slice(1, -2).join('/');
  const reference = segments[segments.length - 1]!;
  const last = name.split('/').pop()!;
  const version = reference;
  const qualifier = `repository_url=${encodeURIComponent(`${host}/${name}`)}${reference.includes(':') ? '' : `&tag=${encodeURIComponent(reference)}`}`;
  return { ecosystem: 'oci', name, version, purl: `pkg:oci/${purlSegment(last)}${reference.includes(':') ? `@${purlSegment(reference)}` : ''}?${qualifier}` };
}

/** The package a GET of `url` downloads, if its path has one of the registries' layouts. */
export function recognizeDependency(url: string): Dependency | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const segments = parsed.pathname.split('/').filter((s) => s !== '').map(decode);
  if (segments.length === 0) return undefined;
  const host = parsed.hostname.toLowerCase();
  const file = segments[segments.length - 1]!;
  return (
    github(host, segments) ??
    oci(host, segments) ??
    npm(segments) ??
    golang(segments) ??
    cargo(segments) ??
    gem(segments) ??
    deb(host, segments) ??
    maven(segments) ??
    (/\.(whl|tar\.gz|zip|tar\.bz2)$/.test(file) && (segments.includes('packages') || segments.includes('simple') || host.includes('pythonhosted')) ? pypi(file) : undefined)
  );
}
