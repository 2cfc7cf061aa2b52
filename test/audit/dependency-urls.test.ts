/** Package URLs recognised from download URLs, one case per registry layout, and URLs that are not packages. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recognizeDependency } from '../../src/audit/dependency-urls.js';

const CASES: Array<[string, string | undefined]> = [
  ['https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz', 'pkg:npm/left-pad@1.3.0'],
  ['https://registry.npmjs.org/@types/node/-/node-20.19.1.tgz', 'pkg:npm/%40types/node@20.19.1'],
  ['http://127.0.0.1:4873/tiny-pkg/-/tiny-pkg-0.1.0-beta.2.tgz', 'pkg:npm/tiny-pkg@0.1.0-beta.2'],
  ['https://registry.npmjs.org/left-pad', undefined],
  ['https://files.pythonhosted.org/packages/ab/cd/requests-2.32.3-py3-none-any.whl', 'pkg:pypi/requests@2.32.3'],
  ['https://files.pythonhosted.org/packages/source/Flask_Login-0.6.3.tar.gz', 'pkg:pypi/flask-login@0.6.3'],
  ['https://files.pythonhosted.org/packages/xx/numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl', 'pkg:pypi/numpy@2.1.0'],
  ['https://crates.io/api/v1/crates/serde/1.0.210/download', 'pkg:cargo/serde@1.0.210'],
  ['https://static.crates.io/crates/serde_json/serde_json-1.0.128.crate', 'pkg:cargo/serde_json@1.0.128'],
  ['https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.4.0.zip', 'pkg:golang/github.com/BurntSushi/toml@v1.4.0'],
  ['https://proxy.golang.org/golang.org/x/text/@v/v0.18.0.mod', undefined],
  ['https://repo1.maven.org/maven2/org/apache/commons/commons-lang3/3.17.0/commons-lang3-3.17.0.jar', 'pkg:maven/org.apache.commons/commons-lang3@3.17.0'],
  ['https://nexus.example/repository/releases/com/acme/core/1.2/core-1.2-sources.jar', 'pkg:maven/com.acme/core@1.2'],
  ['https://rubygems.org/gems/rails-7.2.1.gem', 'pkg:gem/rails@7.2.1'],
  ['https://rubygems.org/gems/nokogiri-1.16.7-x86_64-linux.gem', 'pkg:gem/nokogiri@1.16.7'],
  ['http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10+deb12u8_amd64.deb', 'pkg:deb/debian/curl@7.88.1-10%2Bdeb12u8?arch=amd64'],
  ['http://archive.ubuntu.com/ubuntu/pool/main/o/openssl/libssl3_3.0.13-0ubuntu3_amd64.deb', 'pkg:deb/ubuntu/libssl3@3.0.13-0ubuntu3?arch=amd64'],
  ['https://github.com/cli/cli/releases/download/v2.58.0/gh_2.58.0_linux_amd64.tar.gz', 'pkg:github/cli/cli@v2.58.0'],
  ['https://registry-1.docker.io/v2/library/alpine/manifests/3.20', 'pkg:oci/alpine?repository_url=registry-1.docker.io%2Flibrary%2Falpine&tag=3.20'],
  ['https://example.com/index.html', undefined],
  ['not a url', undefined],
];

test('download URLs of the common registries become package URLs', () => {
  for (const [url, purl] of CASES) assert.equal(recognizeDependency(url)?.purl, purl, url);
});

test('names and versions come out decoded and normalised', () => {
  assert.deepEqual(recognizeDependency('https://registry.npmjs.org/@scope/pkg/-/pkg-2.0.0.tgz'), { ecosystem: 'npm', name: '@scope/pkg', version: '2.0.0', purl: 'pkg:npm/%40scope/pkg@2.0.0' });
  assert.equal(recognizeDependency('https://repo1.maven.org/maven2/org/apache/commons/commons-lang3/3.17.0/commons-lang3-3.17.0.jar')?.name, 'org.apache.commons:commons-lang3');
});
