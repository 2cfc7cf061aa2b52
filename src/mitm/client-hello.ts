/**
 * Reads what the interceptor needs from a TLS ClientHello: is it TLS at all, the SNI, the ALPN list, and whether
 * the client can verify ECDSA signatures (else it gets an RSA leaf). Pure: bytes in, facts out. Structure per
 * RFC 8446 §4.1.2 (and §5.1 for records; a ClientHello may span several records).
 */
import { isIP } from 'node:net';

export interface ClientHelloInfo {
  serverName: string | undefined;
  alpn: string[];
  supportsEcdsa: boolean;
}

export type ClientHelloResult = { kind: 'tls'; hello: ClientHelloInfo } | { kind: 'incomplete' } | { kind: 'not-tls' };

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const ECDSA_SCHEMES = new Set([0x0403, 0x0503, 0x0603, 0x0203]);
/** TLS 1.2 ECDHE_ECDSA suites, for clients that send no signature_algorithms (allowed before TLS 1.3). */
const ECDSA_SUITES = new Set([0xc02b, 0xc02c, 0xcca9, 0xc009, 0xc00a, 0xc023, 0xc024, 0xc0ac, 0xc0ad]);
const MAX_HELLO_BYTES = 64 * 1024;

/** Reassembles the handshake message from the records seen so far. */
function handshakeBytes(data: Buffer): Buffer | 'incomplete' | 'not-tls' {
  const fragments: Buffer[] = [];
  let offset = 0;
  let total = 0;
  while (offset + 5 <= data.length) {
    if (data[offset] !== HANDSHAKE || data[offset + 1] !== 3) return 'not-tls';
    const length = data.readUInt16BE(offset + 3);
    if (offset + 5 + length > data.length) break;
    fragments.push(data.subarray(offset + 5, offset + 5 + length));
    total += length;
    offset += 5 + length;
    if (total >= 4) {
      const message = Buffer.concat(fragments);
      if (message[0] !== CLIENT_HELLO) return 'not-tls';
      const needed = 4 + ((message[1]! << 16) | (message[2]! << 8) | message[3]!);
      if (message.length >= needed) return message.subarray(0, needed);
    }
  }
  if (data.length >= 1 && data[0] !== HANDSHAKE) return 'not-tls';
  if (data.length >= 2 && data[1] !== 3) return 'not-tls';
  return data.length > MAX_HELLO_BYTES ? 'not-tls' : 'incomplete';
}

export function parseClientHello(data: Buffer): ClientHelloResult {
  const message = handshakeBytes(data);
  if (message === 'incomplete' || message === 'not-tls') return { kind: message };
  try {
    return { kind: 'tls', hello: readHello(message) };
  } catch {
    // A record that claims to be a ClientHello but does not parse: let the TLS stack answer it with an alert.
    return { kind: 'tls', hello: { serverName: undefined, alpn: [], supportsEcdsa: true } };
  }
}

function readHello(message: Buffer): ClientHelloInfo {
  let p = 4 + 2 + 32; // header, legacy_version, random
  p += 1 + message[p]!; // session id
  const suitesLength = message.readUInt16BE(p);
  const suites = new Set<number>();
  for (let i = 0; i < suitesLength; i += 2) suites.add(message.readUInt16BE(p + 2 + i));
  p += 2 + suitesLength;
  p += 1 + message[p]!; // compression methods
  let serverName: string | undefined;
  let alpn: string[] = [];
  let schemes: number[] | undefined;
  if (p + 2 <= message.length) {
    const end = p + 2 + message.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = message.readUInt16BE(p);
      const length = message.readUInt16BE(p + 2);
      const body = message.subarray(p + 4, p + 4 + length);
      if (type === 0 && body.length >= 5 && body[2] === 0) serverName = validServerName(body.subarray(5, 5 + body.readUInt16BE(3)).toString('latin1'));
      else if (type === 16) alpn = readAlpn(body);
      else if (type === 13) {
        schemes = [];
        for (let i = 2; i + 1 < 2 + body.readUInt16BE(0); i += 2) schemes.push(body.readUInt16BE(i));
      }
      p += 4 + length;
    }
  }
  const supportsEcdsa = schemes !== undefined ? schemes.some((s) => ECDSA_SCHEMES.has(s)) : [...suites].some((s) => ECDSA_SUITES.has(s));
  return { serverName, alpn, supportsEcdsa };
}

/**
 * RFC 6066 §3: a host_name is an ASCII DNS name, without a trailing dot, never an IP literal. Anything else (CR/LF,
 * spaces, empty labels, 300 bytes of junk) would flow into leaf certificate names, the leaf cache key and logs,
 * so such a hello is treated as having no SNI. Underscores are accepted: they occur in real host names.
 */
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i;

function validServerName(name: string): string | undefined {
  if (name.length === 0 || name.length > 253 || isIP(name) !== 0) return undefined;
  return name.split('.').every((label) => LABEL.test(label)) ? name : undefined;
}

function readAlpn(body: Buffer): string[] {
  const protocols: string[] = [];
  let p = 2;
  while (p < body.length) {
    const length = body[p]!;
    protocols.push(body.subarray(p + 1, p + 1 + length).toString('latin1'));
    p += 1 + length;
  }
  return protocols;
}
