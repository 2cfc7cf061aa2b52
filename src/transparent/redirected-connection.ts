/**
 * What a connection redirected to a transparent listener is, told by its first bytes, and where it goes: the
 * original destination (`client.destination`), whatever name it carries.
 *   HTTP/1.x request line → the HTTP server, as if it came to the explicit port: every hook, rule and addon applies;
 *   TLS ClientHello       → a tunnel flow to the destination, named by its SNI when the name checks out; the
 *                           interception policy may decide "mitm" for it, with a leaf for that SNI;
 *   anything else, or a client silent for the peek timeout (server-first protocols) → a plain tunnel flow.
 * A tunnel flow here is a CONNECT getaway wrote for the client (`flow.redirected`), so `connect` hooks, CONNECT
 * port limits and access rules decide it like any CONNECT.
 */
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import type { ClientInfo } from '../core/connection.js';
import { TunnelFlow } from '../core/flow.js';
import { HeaderList } from '../core/header-list.js';
import { formatAuthority } from '../http/request-target.js';
import { parseClientHello } from '../mitm/client-hello.js';
import type { ProxyRuntime } from '../runtime.js';
import { runTunnelFlow } from '../tunnel/connect.js';
import { readFirstBytes } from '../tunnel/first-bytes.js';

/** How long a redirected client may stay silent before it is taken for a server-first protocol (without --mitm). */
export const DEFAULT_REDIRECTED_PEEK_MS = 1000;

/** A request line longer than this is not HTTP as getaway serves it; llhttp would refuse it anyway. */
const MAX_REQUEST_LINE = 16 * 1024;

type FirstBytes = { kind: 'tls'; serverName: string | undefined } | { kind: 'http' } | { kind: 'other' };

const TOKEN_CHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;

/** An HTTP/1.x request line (`GET /path HTTP/1.1`); h2c's `PRI * HTTP/2.0` preface is "other", tunnelled as is. */
function classifyHttp(bytes: Buffer): FirstBytes | 'incomplete' {
  const limit = Math.min(bytes.length, MAX_REQUEST_LINE);
  let i = 0;
  while (i < limit && i < 32 && TOKEN_CHAR.test(String.fromCharCode(bytes[i]!))) i++;
  if (i === limit) return limit === MAX_REQUEST_LINE ? { kind: 'other' } : 'incomplete';
  if (i === 0 || bytes[i] !== 0x20) return { kind: 'other' };
  const end = bytes.indexOf(0x0a, i);
  if (end === -1) return bytes.length >= MAX_REQUEST_LINE ? { kind: 'other' } : 'incomplete';
  const line = bytes.subarray(0, end).toString('latin1').replace(/\r$/, '');
  return / HTTP\/1\.[01]$/.test(line) ? { kind: 'http' } : { kind: 'other' };
}

export function classifyFirstBytes(bytes: Buffer): FirstBytes | 'incomplete' {
  if (bytes[0] === 0x16) {
    const hello = parseClientHello(bytes);
    if (hello.kind === 'incomplete') return 'incomplete';
    if (hello.kind === 'tls') return { kind: 'tls', serverName: hello.hello.serverName };
    return { kind: 'other' };
  }
  return classifyHttp(bytes);
}

/** The name a flow to `destination` goes by: the client's name when it resolves to that address, else the address. */
export async function destinationName(runtime: ProxyRuntime, name: string | undefined, destination: { host: string; port: number }, said: string): Promise<string> {
  if (name === undefined || name === '' || isIP(name) !== 0) return destination.host;
  if (await runtime.destinationNames.matches(name, destination.host)) return name;
  runtime.logger.warn(
    { name, destination: formatAuthority(destination.host, destination.port, 'https') },
    `${said} "${name}" does not resolve to the original destination ${destination.host}; the destination wins`,
  );
  return destination.host;
}

export async function serveRedirected(runtime: ProxyRuntime, socket: Socket, client: ClientInfo, serveHttp: (socket: Socket) => void): Promise<void> {
  const destination = client.destination!;
  const onError = (err: Error): void => runtime.logger.debug({ err, client: client.id }, 'redirected client socket error');
  socket.on('error', onError);
  const peekMs = runtime.mitm?.peekTimeoutMs ?? DEFAULT_REDIRECTED_PEEK_MS;
  const { bytes, result } = await readFirstBytes<FirstBytes>(socket, Buffer.alloc(0), peekMs, classifyFirstBytes, { kind: 'other' });
  if (socket.destroyed) return;
  if (result.kind === 'http') {
    socket.removeListener('error', onError);
    socket.unshift(bytes);
    serveHttp(socket);
    return;
  }
  const host = result.kind === 'tls' ? await destinationName(runtime, result.serverName, destination, 'TLS server name') : destination.host;
  if (socket.destroyed) return;
  const authority = formatAuthority(host, destination.port);
  const request = { method: 'CONNECT', target: authority, httpVersion: '1.1', headers: new HeaderList([]) };
  const flow = new TunnelFlow(client, request, { host, port: destination.port }, true);
  runtime.flowStarted(flow);
  return runTunnelFlow(runtime, flow, socket, bytes);
}
