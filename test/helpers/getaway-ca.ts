import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCertificateAuthority, type CertificateAuthority } from '../../src/mitm/certificate-authority.js';

export interface TestGetawayCa {
  dir: string;
  ca: CertificateAuthority;
  certPath: string;
}

let cached: Promise<TestGetawayCa> | undefined;

/** A getaway interception CA made once per test process in a temporary directory. */
export function testGetawayCa(): Promise<TestGetawayCa> {
  cached ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'getaway-mitm-ca-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const { ca } = await initCertificateAuthority(dir);
    return { dir, ca, certPath: ca.certPath! };
  })();
  return cached;
}
