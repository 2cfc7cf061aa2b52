/**
 * The PROXY protocol header a load balancer puts in front of a connection (HAProxy's proxy-protocol.txt,
 * versions 1 and 2): who the real client is. Pure: bytes in, a header or a reason out. Written here because no
 * maintained npm parser covers v2 with TLVs and LOCAL; the format is a few fixed fields.
 */
import { isIP } from 'node:net';
import { canonicalIp } from '../core/addresses.js';

export interface ProxyProtocolTlv {
  readonly type: number;
  readonly value: Buffer;
}

export interface ProxyProtocolHeader {
  readonly version: 1 | 2;
  /**
   * "proxy": `source` is the real client. "local": the balancer's own connection (a health check), or a v1
   * "UNKNOWN" / v2 unspecified family: the socket's peer stands for itself.
   */
  readonly command: 'proxy' | 'local';
  /** Addresses are in canonicalIp() form (an IPv4-mapped IPv6 source is its IPv4 address). */
  readonly source: { readonly address: string; readonly port: number } | undefined;
  readonly destination: { readonly address: string; readonly port: number } | undefined;
  /** v2 type-length-value extensions (ALPN 0x01, authority 0x02, unique id 0x05, SSL 0x20, …), in order. */
  readonly tlvs: readonly ProxyProtocolTlv[];
}

export type ParseResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'header'; readonly header: ProxyProtocolHeader; readonly length: number };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** v1's longest line, CRLF included (the spec's 107 bytes). */
const V1_MAX = 107;
/** The longest v2 header: 16 fixed bytes plus a 16-bit length. */
export const MAX_HEADER_BYTES = 16 + 0xffff;

const INCOMPLETE: ParseResult = { kind: 'incomplete' };
const invalid = (reason: string): ParseResult => ({ kind: 'invalid', reason });

/** Parses the start of a connection's bytes. "incomplete" asks for more; anything but a PROXY header is invalid. */
export function parseProxyProtocol(data: Buffer): ParseResult {
  if (startsWithPrefixOf(data, V2_SIGNATURE)) return data.length < 16 ? INCOMPLETE : parseV2(data);
  if (startsWithPrefixOf(data, V1_PREFIX)) return parseV1(data);
  return invalid('the connection does not start with a PROXY protocol header');
}

/** True when `data` and `prefix` agree on their common length (so more bytes may still complete the prefix). */
function startsWithPrefixOf(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(data: Buffer): ParseResult {
  const end = data.indexOf('\r\n', 0, 'latin1');
  if (end === -1) return data.length >= V1_MAX ? invalid('v1 header longer than 107 bytes') : INCOMPLETE;
  if (end + 2 > V1_MAX) return invalid('v1 header longer than 107 bytes');
  const fields = data.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  if (fields[1] === 'UNKNOWN') return { kind: 'header', length, header: { version: 1, command: 'local', source: undefined, destination: undefined, tlvs: [] } };
  if (fields.length !== 6 || (fields[1] !== 'TCP4' && fields[1] !== 'TCP6')) return invalid('v1 header is not "PROXY TCP4|TCP6 src dst sport dport"');
  const family = fields[1] === 'TCP4' ? 4 : 6;
  const [, , sourceAddress, destinationAddress, sourcePort, destinationPort] = fields as [string, string, string, string, string, string];
  if (isIP(sourceAddress) !== family || isIP(destinationAddress) !== family) return invalid(`v1 addresses are not ${fields[1]} addresses`);
  const ports = [sourcePort, destinationPort].map(parsePort);
  if (ports.some((port) => port === undefined)) return invalid('v1 port is not a number from 0 to 65535');
  return {
    kind: 'header',
    length,
    header: {
      version: 1,
      command: 'proxy',
      source: { address: canonicalIp(sourceAddress), port: ports[0]! },
      destination: { address: canonicalIp(destinationAddress), port: ports[1]! },
      tlvs: [],
    },
  };
}

function parsePort(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

function parseV2(data: Buffer): ParseResult {
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return invalid(`v2 version ${versionCommand >> 4}`);
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid(`v2 command ${command}`);
  const familyProtocol = data[13]!;
  const length = 16 + data.readUInt16BE(14);
  if (data.length < length) return INCOMPLETE;
  const body = data.subarray(16, length);
  const family = familyProtocol >> 4;
  const transport = familyProtocol & 0x0f;
  let addressBytes: number;
  if (family === 1) addressBytes = 12;
  else if (family === 2) addressBytes = 36;
  else if (family === 3) addressBytes = 216;
  else if (family === 0) addressBytes = 0;
  else return invalid(`v2 address family ${family}`);
  if (body.length < addressBytes) return invalid('v2 address block shorter than its family needs');
  const tlvs = parseTlvs(body.subarray(addressBytes));
  if (tlvs === undefined) return invalid('v2 TLVs overrun the header');
  // LOCAL, an unspecified family and Unix sockets carry no IP endpoint: the socket's peer stands for itself.
  if (command === 0 || family === 0 || family === 3) {
    return { kind: 'header', length, header: { version: 2, command: 'local', source: undefined, destination: undefined, tlvs } };
  }
  if (transport !== 1) return invalid('v2 header is not for a stream (TCP) connection');
  const size = family === 1 ? 4 : 16;
  const source = { address: formatAddress(body.subarray(0, size)), port: body.readUInt16BE(2 * size) };
  const destination = { address: formatAddress(body.subarray(size, 2 * size)), port: body.readUInt16BE(2 * size + 2) };
  return { kind: 'header', length, header: { version: 2, command: 'proxy', source, destination, tlvs } };
}

function parseTlvs(bytes: Buffer): ProxyProtocolTlv[] | undefined {
  const tlvs: ProxyProtocolTlv[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 3 > bytes.length) return undefined;
    const length = bytes.readUInt16BE(offset + 1);
    if (offset + 3 + length > bytes.length) return undefined;
    tlvs.push({ type: bytes[offset]!, value: Buffer.from(bytes.subarray(offset + 3, offset + 3 + length)) });
    offset += 3 + length;
  }
  return tlvs;
}

function formatAddress(bytes: Buffer): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // In getaway's one spelling of an address (IPv4-mapped IPv6 as IPv4), like the addresses of every other client.
  return canonicalIp(groups.join(':'));
}

type Endpoint = { address: string; port: number };

/**
 * Both endpoints in one family, as the protocol requires: canonical (IPv4-mapped IPv6 is IPv4), and an IPv4
 * address mapped into IPv6 when the other end is IPv6.
 */
function sameFamily(source: Endpoint, destination: Endpoint): [Endpoint, Endpoint, boolean] {
  const a = { address: canonicalIp(source.address), port: source.port };
  const b = { address: canonicalIp(destination.address), port: destination.port };
  const v6 = isIP(a.address) === 6 || isIP(b.address) === 6;
  if (v6) for (const end of [a, b]) if (isIP(end.address) === 4) end.address = `::ffff:${end.address}`;
  return [a, b, v6];
}

/** A v1 header for a connection from `source` to `destination` (what getaway sends to upstreams that want one). */
export function formatProxyProtocolV1(source: Endpoint, destination: Endpoint): Buffer {
  const [a, b, v6] = sameFamily(source, destination);
  return Buffer.from(`PROXY ${v6 ? 'TCP6' : 'TCP4'} ${a.address} ${b.address} ${a.port} ${b.port}\r\n`, 'latin1');
}

/** A v2 PROXY header (no TLVs) for a TCP connection from `source` to `destination`. */
export function formatProxyProtocolV2(sourceEnd: Endpoint, destinationEnd: Endpoint): Buffer {
  const [source, destination, v6] = sameFamily(sourceEnd, destinationEnd);
  const size = v6 ? 16 : 4;
  const header = Buffer.alloc(16 + 2 * size + 4);
  V2_SIGNATURE.copy(header);
  header[12] = 0x21;
  header[13] = v6 ? 0x21 : 0x11;
  header.writeUInt16BE(2 * size + 4, 14);
  addressBytes(source.address, v6).copy(header, 16);
  addressBytes(destination.address, v6).copy(header, 16 + size);
  header.writeUInt16BE(source.port, 16 + 2 * size);
  header.writeUInt16BE(destination.port, 18 + 2 * size);
  return header;
}

function addressBytes(address: string, v6: boolean): Buffer {
  if (!v6) return Buffer.from(address.split('.').map(Number));
  // A dotted IPv4 tail (::ffff:192.0.2.1) is the last two groups.
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (dotted !== null) {
    const [, prefix, a, b, c, d] = dotted.map(String) as [string, string, string, string, string, string];
    address = `${prefix}${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`;
  }
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}
