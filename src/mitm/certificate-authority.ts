/**
 * The local CA that signs interception certificates. Generated per install by `getaway ca init`, never shipped:
 * a CA key in a package would let anyone impersonate any site to every user of it (the goproxy mistake). The key
 * file is created with mode 0600 in a 0700 directory, and an existing CA is reused, never overwritten.
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CA_CERT_FILE, CA_KEY_FILE, CaError, defaultCaDir } from './ca-files.js';
import { createCaCertificate, exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, toPem } from './x509.js';

export { CA_CERT_FILE, CA_KEY_FILE, CaError, defaultCaDir } from './ca-files.js';

export interface CertificateAuthority {
  readonly certPem: string;
  readonly certDer: Buffer;
  readonly privateKey: CryptoKey;
  /** Where the certificate lives, for `getaway ca path` and trust instructions. */
  readonly certPath: string | undefined;
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Creates a new CA in `dir`; refuses if one is already there. Returns whether it created one. */
export async function initCertificateAuthority(dir: string): Promise<{ created: boolean; ca: CertificateAuthority }> {
  try {
    return { created: false, ca: await loadCertificateAuthority(dir) };
  } catch (err) {
    if (!(err instanceof CaError && err.message.includes('no CA'))) throw err;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = await generateKeyPair('rsa');
  const now = Date.now();
  const certDer = await createCaCertificate({
    commonName: `getaway CA (${hostname()})`,
    keys,
    notBefore: new Date(now - 2 * 86_400_000),
    notAfter: new Date(now + 10 * 365 * 86_400_000),
  });
  const certPem = toPem('CERTIFICATE', certDer);
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  // 'wx' fails if the file appeared meanwhile: two concurrent inits must not swap the key under a published cert.
  await writeFile(join(dir, CA_KEY_FILE), keyPem, { mode: 0o600, flag: 'wx' });
  await writeFile(join(dir, CA_CERT_FILE), certPem, { mode: 0o644, flag: 'wx' });
  return { created: true, ca: { certPem, certDer, privateKey: keys.privateKey, certPath: join(dir, CA_CERT_FILE) } };
}

export async function loadCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  const certPath = join(dir, CA_CERT_FILE);
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(join(dir, CA_KEY_FILE), 'utf8')]);
  } catch (err) {
    if (isMissing(err)) throw new CaError(`no CA in ${dir}: create one with \`getaway ca init${dir === defaultCaDir() ? '' : ` --ca-dir ${dir}`}\``);
    throw new CaError(`cannot read the CA in ${dir}: ${(err as Error).message}`);
  }
  return parseCertificateAuthority(certPem, keyPem, certPath);
}

/** A CA given as PEM text (the library can pass one without files). */
export async function parseCertificateAuthority(certPem: string, keyPem: string, certPath?: string): Promise<CertificateAuthority> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new CaError(`the CA certificate is not valid PEM: ${(err as Error).message}`);
  }
  if (!cert.ca) throw new CaError('the CA certificate is not a CA (basicConstraints CA:FALSE)');
  if (cert.publicKey.asymmetricKeyType !== 'rsa') throw new CaError(`the CA key must be RSA, got ${cert.publicKey.asymmetricKeyType ?? 'unknown'}`);
  const privateKey = await importPrivateKeyPem(keyPem, 'rsa').catch((err: Error) => {
    throw new CaError(`the CA key is not a PKCS#8 RSA private key: ${err.message}`);
  });
  return { certPem, certDer: Buffer.from(cert.raw), privateKey, certPath };
}
