/** `getaway ca init | path | export`: create, locate and print the interception CA. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CA_CERT_FILE, initCertificateAuthority, loadCertificateAuthority } from '../mitm/certificate-authority.js';

export async function caInit(dir: string): Promise<void> {
  const { created, ca } = await initCertificateAuthority(dir);
  const path = ca.certPath ?? join(dir, CA_CERT_FILE);
  process.stdout.write(
    created
      ? `created a CA in ${dir}\ncertificate: ${path}\nthe private key is readable by you only; trust the certificate as docs/mitm.md explains\n`
      : `a CA already exists in ${dir} and was kept (it is never overwritten)\ncertificate: ${path}\n`,
  );
}

export async function caPath(dir: string): Promise<void> {
  const path = join(dir, CA_CERT_FILE);
  // Loading (not just stat) so a half-written or foreign directory is reported now, not at the first request.
  if (!existsSync(path)) await loadCertificateAuthority(dir);
  process.stdout.write(`${path}\n`);
}

export async function caExport(dir: string, der: boolean): Promise<void> {
  const ca = await loadCertificateAuthority(dir);
  process.stdout.write(der ? ca.certDer : ca.certPem);
}
