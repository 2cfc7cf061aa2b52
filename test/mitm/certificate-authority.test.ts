import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CaError, initCertificateAuthority, loadCertificateAuthority } from '../../src/mitm/certificate-authority.js';
import { CLI_PATH } from '../helpers/cli-process.js';

function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { env });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

test('ca init creates a CA with a 0600 key in a 0700 directory, and never overwrites it', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'getaway-ca-')), 'nested');
  const first = await initCertificateAuthority(dir);
  assert.equal(first.created, true);
  assert.equal(statSync(join(dir, 'getaway-ca-key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const cert = new X509Certificate(readFileSync(join(dir, 'getaway-ca.pem')));
  assert.equal(cert.ca, true);
  assert.equal(cert.publicKey.asymmetricKeyType, 'rsa');
  const again = await initCertificateAuthority(dir);
  assert.equal(again.created, false);
  assert.equal(again.ca.certPem, first.ca.certPem, 'the existing CA is reused');
});

test('loading a missing or broken CA says what to do', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-ca-'));
  await assert.rejects(loadCertificateAuthority(dir), (err: unknown) => err instanceof CaError && /no CA in .*getaway ca init/.test(err.message));
  writeFileSync(join(dir, 'getaway-ca.pem'), 'not a certificate');
  writeFileSync(join(dir, 'getaway-ca-key.pem'), 'not a key');
  await assert.rejects(loadCertificateAuthority(dir), /not valid PEM/);
});

test('the CLI: ca init, ca path, ca export (PEM and DER); serve --mitm without a CA refuses to start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'getaway-ca-'));
  const init = await cli(['ca', 'init', '--ca-dir', dir]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout.toString(), /created a CA in/);
  assert.match((await cli(['ca', 'init', '--ca-dir', dir])).stdout.toString(), /already exists .* kept/);
  assert.equal((await cli(['ca', 'path', '--ca-dir', dir])).stdout.toString(), `${join(dir, 'getaway-ca.pem')}\n`);
  const pem = (await cli(['ca', 'export', '--ca-dir', dir])).stdout.toString();
  assert.equal(pem, readFileSync(join(dir, 'getaway-ca.pem'), 'utf8'));
  const der = (await cli(['ca', 'export', '--der', '--ca-dir', dir])).stdout;
  assert.ok(der.equals(Buffer.from(new X509Certificate(pem).raw)));
  // The default directory comes from GETAWAY_CA_DIR.
  assert.equal((await cli(['ca', 'path'], { ...process.env, GETAWAY_CA_DIR: dir })).stdout.toString(), `${join(dir, 'getaway-ca.pem')}\n`);
  const empty = mkdtempSync(join(tmpdir(), 'getaway-ca-'));
  const serve = await cli(['serve', '--listen', '127.0.0.1:0', '--mitm', '--ca-dir', empty]);
  assert.equal(serve.code, 2);
  assert.match(serve.stderr, /no CA in .*: create one with `getaway ca init --ca-dir/);
});
