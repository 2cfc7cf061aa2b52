/**
 * A throwaway CA and a leaf for "localhost"/127.0.0.1, made with the openssl CLI once per test process. Clients
 * get the CA explicitly (curl --cacert, undici `ca`, requests `verify=`); verification is never turned off.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  caCert: string;
  caCertPath: string;
  leafKey: string;
  leafCert: string;
  /** A leaf signed by the same CA for other.example.test only: a wrong name for anything on localhost. */
  otherLeafKey: string;
  otherLeafCert: string;
}

let cached: TestCertificates | undefined;

export function testCertificates(): TestCertificates {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'getaway-test-ca-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=getaway test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '2', '-extfile', 'leaf.ext');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'other.key', '-out', 'other.csr', '-subj', '/CN=other.example.test');
  writeFileSync(join(dir, 'other.ext'), 'subjectAltName=DNS:other.example.test\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'other.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'other.pem', '-days', '2', '-extfile', 'other.ext');
  cached = {
    caCert: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    caCertPath: join(dir, 'ca.pem'),
    leafKey: readFileSync(join(dir, 'leaf.key'), 'utf8'),
    leafCert: readFileSync(join(dir, 'leaf.pem'), 'utf8'),
    otherLeafKey: readFileSync(join(dir, 'other.key'), 'utf8'),
    otherLeafCert: readFileSync(join(dir, 'other.pem'), 'utf8'),
  };
  return cached;
}
