/**
 * The few X.509 operations getaway needs, on top of PKI.js (a maintained PKI library on WebCrypto, with no
 * global side effects). Names, extensions and signing live here so that the CA and the leaf minting read as
 * policy, not ASN.1.
 */
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

// One engine instance passed explicitly to every call, instead of PKI.js's process-wide setEngine().
const engine = new pkijs.CryptoEngine({ name: 'getaway', crypto: globalThis.crypto });

export type KeyKind = 'ecdsa' | 'rsa';

const ALGORITHMS: Record<KeyKind, RsaHashedKeyGenParams | EcKeyGenParams> = {
  ecdsa: { name: 'ECDSA', namedCurve: 'P-256' },
  rsa: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 },
};

export async function generateKeyPair(kind: KeyKind): Promise<CryptoKeyPair> {
  // WebCrypto generates keys off the main thread, so even RSA never blocks the event loop.
  return webcrypto.subtle.generateKey(ALGORITHMS[kind], true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return toPem('PRIVATE KEY', der);
}

export async function importPrivateKeyPem(pem: string, kind: KeyKind): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', fromPem(pem), ALGORITHMS[kind], true, ['sign']);
}

export function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function fromPem(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function distinguishedName(attributes: Array<[oid: string, value: string]>): pkijs.RelativeDistinguishedNames {
  return new pkijs.RelativeDistinguishedNames({
    typesAndValues: attributes.map(([type, value]) => new pkijs.AttributeTypeAndValue({ type, value: new asn1js.Utf8String({ value }) })),
  });
}

const OID = {
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** keyUsage bits (RFC 5280 §4.2.1.3), as the first byte of a BIT STRING. */
const KEY_USAGE = { digitalSignature: 0x80, keyEncipherment: 0x20, keyCertSign: 0x04, cRLSign: 0x02 } as const;

function extension(extnID: string, critical: boolean, value: { toSchema(): asn1js.AsnType } | asn1js.AsnType): pkijs.Extension {
  const schema = 'toSchema' in value ? value.toSchema() : value;
  return new pkijs.Extension({ extnID, critical, extnValue: schema.toBER(false) });
}

function keyUsage(bits: number): asn1js.BitString {
  return new asn1js.BitString({ valueHex: new Uint8Array([bits]).buffer, unusedBits: 0 });
}

async function keyIdentifier(publicKey: CryptoKey): Promise<ArrayBuffer> {
  const spki = await webcrypto.subtle.exportKey('spki', publicKey);
  return webcrypto.subtle.digest('SHA-1', spki);
}

function randomSerial(): asn1js.Integer {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f; // positive, as RFC 5280 §4.1.2.2 requires
  bytes[0]! |= 0x01; // and never a leading zero octet
  return new asn1js.Integer({ valueHex: bytes.buffer });
}

export interface CaCertificateSpec {
  commonName: string;
  keys: CryptoKeyPair;
  notBefore: Date;
  notAfter: Date;
}

export async function createCaCertificate(spec: CaCertificateSpec): Promise<Buffer> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = randomSerial();
  const name = distinguishedName([[OID.commonName, spec.commonName]]);
  cert.issuer = name;
  cert.subject = name;
  cert.notBefore.value = spec.notBefore;
  cert.notAfter.value = spec.notAfter;
  cert.extensions = [
    extension(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
    extension(OID.keyUsage, true, keyUsage(KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign)),
    extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: await keyIdentifier(spec.keys.publicKey) })),
  ];
  await cert.subjectPublicKeyInfo.importKey(spec.keys.publicKey, engine);
  await cert.sign(spec.keys.privateKey, 'SHA-256', engine);
  return Buffer.from(cert.toSchema(true).toBER(false));
}

export interface LeafCertificateSpec {
  /** Omitted when the first name does not fit the 64-character CN limit; the SAN then carries everything. */
  commonName: string | undefined;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  publicKey: CryptoKey;
  keyKind: KeyKind;
  issuerDer: Buffer;
  issuerKey: CryptoKey;
  notBefore: Date;
  notAfter: Date;
}

function ipBytes(address: string): ArrayBuffer {
  if (isIP(address) === 4) return new Uint8Array(address.split('.').map(Number)).buffer;
  // Expand "::" and write eight 16-bit groups.
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes.buffer;
}

export async function createLeafCertificate(spec: LeafCertificateSpec): Promise<Buffer> {
  const issuer = pkijs.Certificate.fromBER(new Uint8Array(spec.issuerDer));
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = randomSerial();
  cert.issuer = issuer.subject;
  cert.subject = distinguishedName(spec.commonName === undefined ? [] : [[OID.commonName, spec.commonName]]);
  cert.notBefore.value = spec.notBefore;
  cert.notAfter.value = spec.notAfter;
  const altNames = new pkijs.AltName({
    altNames: [
      ...spec.dnsNames.map((value) => new pkijs.GeneralName({ type: 2, value })),
      ...spec.ipAddresses.map((value) => new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: ipBytes(value) }) })),
    ],
  });
  const issuerKeyId = issuer.extensions?.find((e) => e.extnID === OID.subjectKeyIdentifier)?.parsedValue as asn1js.OctetString | undefined;
  const usage = KEY_USAGE.digitalSignature | (spec.keyKind === 'rsa' ? KEY_USAGE.keyEncipherment : 0);
  cert.extensions = [
    extension(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: false })),
    extension(OID.keyUsage, true, keyUsage(usage)),
    extension(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [OID.serverAuth] })),
    // With an empty subject the SAN must be critical (RFC 5280 §4.2.1.6).
    extension(OID.subjectAltName, spec.commonName === undefined, altNames),
    ...(issuerKeyId === undefined
      ? []
      : [extension(OID.authorityKeyIdentifier, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: issuerKeyId.valueBlock.valueHexView.slice().buffer }) }))]),
  ];
  await cert.subjectPublicKeyInfo.importKey(spec.publicKey, engine);
  await cert.sign(spec.issuerKey, 'SHA-256', engine);
  return Buffer.from(cert.toSchema(true).toBER(false));
}
