/**
 * HTTPS interception for a CONNECT tunnel: answer 200, look at the client's first bytes, and if they are a TLS
 * ClientHello terminate TLS with a leaf minted for its SNI; the decrypted connection is fed to the same HTTP
 * listener as plain proxy traffic, so every hook, addon and route applies unchanged. Anything that is not TLS
 * (or a client that waits for the server to speak first) is tunnelled untouched.
 *
 *   client ══CONNECT══▶ getaway ── 200
 *   client ══TLS (leaf for SNI, signed by the local CA)══▶ getaway ── HTTP requests ──▶ forward.ts ══TLS, verified══▶ origin
 */
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
import { TLSSocket } from 'node:tls';
import { startOriginTls } from '../upstream/origin-tls.js';
import { ProxyError, toProxyError } from '../core/errors.js';
import type { TunnelFlow } from '../core/flow.js';
import { endFlow, markFailed } from '../core/flow-end.js';
import type { ProxyRuntime } from '../runtime.js';
import type { MitmRuntime } from './mitm-runtime.js';
import { dialAlongPlan } from '../tunnel/dial-along-plan.js';
import { ReadRelay } from '../tunnel/read-relay.js';
import { readFirstBytes } from '../tunnel/first-bytes.js';
import { abandonTunnel, openTunnel, spliceTunnel } from '../tunnel/tunnel-steps.js';
import { chooseLeafNames } from './certificate-names.js';
import { pinnedClientKey } from './mitm-policy.js';
import { parseClientHello, type ClientHelloResult } from './client-hello.js';

/** Reads until a complete ClientHello, something that is not TLS, the client closing, or silence (server-first). */
function peekFirstBytes(socket: Socket, head: Buffer, timeoutMs: number): Promise<{ bytes: Buffer; hello: ClientHelloResult }> {
  const classify = (bytes: Buffer): ClientHelloResult | 'incomplete' => {
    const result = parseClientHello(bytes);
    return result.kind === 'incomplete' ? 'incomplete' : result;
  };
  return readFirstBytes<ClientHelloResult>(socket, head, timeoutMs, classify, { kind: 'not-tls' }).then(({ bytes, result }) => ({ bytes, hello: result }));
}

/** Remembered origins past this many are forgotten oldest first. */
const MAX_REMEMBERED_ORIGINS = 10_000;

/**
 * Connects to the origin once (along the flow's routes) to read the names in its certificate, for leaves that
 * carry them too. Verification is not the point here, only the names: the real requests verify as usual. A probe
 * that fails leaves the leaf with the SNI and CONNECT host only.
 */
async function namesFromOrigin(runtime: ProxyRuntime, memo: Map<string, string[]>, flow: TunnelFlow, sni: string | undefined): Promise<string[]> {
  const key = `${flow.target.host}:${flow.target.port}|${sni ?? ''}`;
  const known = memo.get(key);
  if (known !== undefined) return known;
  let names: string[] = [];
  try {
    const { socket } = await dialAlongPlan(runtime, flow, { scheme: 'https', ...flow.target });
    const servername = sni ?? (isIP(flow.target.host) === 0 ? flow.target.host : undefined);
    names = await new Promise<string[]>((resolve, reject) => {
      // Verification is off: the probe only reads the names; the connection that carries traffic verifies.
      const tls = startOriginTls(socket, flow.target.host, 'none', servername);
      const timer = setTimeout(() => (tls.destroy(), reject(new Error('TLS handshake timed out'))), runtime.options.connectTimeoutMs);
      tls.once('secureConnect', () => {
        clearTimeout(timer);
        const altNames = tls.getPeerCertificate().subjectaltname ?? '';
        tls.destroy();
        resolve(altNames.split(', ').map((entry) => entry.replace(/^(DNS|IP Address):/, '')).filter((name) => name !== ''));
      });
      tls.once('error', (err) => (clearTimeout(timer), reject(err)));
    });
  } catch (err) {
    runtime.logger.debug({ err, flowId: flow.id }, 'could not read the origin certificate names; minting with the SNI only');
  }
  memo.set(key, names);
  if (memo.size > MAX_REMEMBERED_ORIGINS) memo.delete(memo.keys().next().value!);
  return names;
}

/** Alerts a client sends when it does not accept our certificate: a pinned or untrusting client. */
const CERT_REJECTION = /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|UNSUPPORTED_CERTIFICATE|DECRYPT_ERROR)/;

export async function runInterceptedTunnel(runtime: ProxyRuntime, mitm: MitmRuntime, flow: TunnelFlow, socket: Socket, head: Buffer): Promise<void> {
  await openTunnel(runtime, flow, socket);
  const startRead = socket.bytesRead - head.length;
  const startWritten = socket.bytesWritten;
  if (flow.killed) {
    await endFlow(runtime, flow, 'complete');
    return;
  }
  const { bytes, hello } = await peekFirstBytes(socket, head, mitm.peekTimeoutMs);
  if (hello.kind !== 'tls' || socket.destroyed) {
    // Not TLS, or a server-first protocol: carry it untouched, with what was already read.
    flow.intercepted = false;
    let upstream: Socket;
    const reader = new ReadRelay();
    try {
      ({ socket: upstream } = await dialAlongPlan(runtime, flow, { scheme: 'https', ...flow.target }, reader));
    } catch (err) {
      // The 200 is already out; all that is left to say is closing the connection.
      markFailed(runtime, flow, toProxyError(err, 'connection_refused'));
      socket.destroy();
      await endFlow(runtime, flow, 'complete');
      return;
    }
    if (socket.destroyed) {
      await abandonTunnel(runtime, flow, upstream);
      return;
    }
    return spliceTunnel(runtime, flow, socket, upstream, bytes, reader);
  }

  const originNames = mitm.originNames === undefined ? undefined : await namesFromOrigin(runtime, mitm.originNames, flow, hello.hello.serverName);
  const names = chooseLeafNames({ sni: hello.hello.serverName, connectHost: flow.target.host, ...(originNames ? { originNames } : {}) });
  const keyKind = hello.hello.supportsEcdsa ? 'ecdsa' : 'rsa';
  const leaf = await mitm.leaves.get(names, keyKind);
  flow.intercepted = true;
  socket.unshift(bytes);
  const tls = new TLSSocket(socket, { isServer: true, secureContext: leaf.context, ALPNProtocols: ['http/1.1'] });
  let secured = false;
  tls.once('secure', () => (secured = true));
  tls.on('error', (err: NodeJS.ErrnoException) => {
    const clientAddress = flow.client.remoteAddress;
    if (!secured && CERT_REJECTION.test(err.code ?? '') && mitm.policy.markPinned(flow.target.host, pinnedClientKey(flow))) {
      runtime.logger.warn(
        { flowId: flow.id, host: flow.target.host, clientAddress, code: err.code },
        `client ${clientAddress} refused the interception certificate for ${flow.target.host} (pinning or an untrusted CA); tunnelling this host untouched for this client from now on`,
      );
    } else runtime.logger.debug({ err, flowId: flow.id }, 'intercepted TLS connection error');
    if (!secured) flow.error ??= new ProxyError('tls_protocol_error', `client TLS handshake failed: ${err.code ?? err.message}`);
  });
  flow.setKillHandler(() => tls.destroy());
  runtime.serveIntercepted(tls, socket, { host: flow.target.host, port: flow.target.port, tunnel: flow, serverName: hello.hello.serverName });
  await new Promise<void>((resolve) => {
    if (socket.closed) resolve();
    else socket.once('close', () => resolve());
  });
  // TLS bytes as they crossed the client connection; the decrypted requests are flows of their own.
  flow.bytes.clientToServer = socket.bytesRead - startRead;
  flow.bytes.serverToClient = socket.bytesWritten - startWritten;
  await endFlow(runtime, flow, 'complete');
}
