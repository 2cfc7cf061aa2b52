/**
 * Upgrade requests in absolute form (WebSocket and friends): forwarded like any request; on a 101 whose
 * protocol is one the client asked for, the two connections are spliced. Any other answer is relayed as a
 * normal response on a connection that then closes.
 *
 *   client ──GET ws (Upgrade)──▶ getaway ──GET (Upgrade)──▶ origin
 *   client ◀──────── 101 ─────── getaway ◀────── 101 ────── origin
 *   client ◀══════════════ spliced both ways ═════════════▶ origin
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream';
import { ProxyError, toProxyError } from '../core/errors.js';
import { notifyTaps } from '../core/body-tap.js';
import type { ClientInfo } from '../core/connection.js';
import type { HttpFlow } from '../core/flow.js';
import type { Interception } from '../core/runtime.js';
import { redirectedRequestHost } from '../transparent/request-host.js';
import { endFlow, markFailed } from '../core/flow-end.js';
import type { ProxyRuntime } from '../runtime.js';
import { dialAlongPlan } from '../tunnel/dial-along-plan.js';
import { splice } from '../tunnel/splice.js';
import { startOriginTls } from '../upstream/origin-tls.js';
import { createHttpFlow } from './create-http-flow.js';
import { answerFailureOnSocket, closeSoon, errorResponse, serializeHead, writeRawResponse } from './error-response.js';
import { requestedUpgrades } from './hop-by-hop.js';
import { relayTapped } from './tapped-relay.js';
import { runResponseHeaders, takeOriginHead } from './origin-head.js';

export function createUpgradeHandler(runtime: ProxyRuntime) {
  function handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', (err) => runtime.logger.debug({ err }, 'client socket error during upgrade'));
    socket.pause();
    const client = runtime.clientInfo(socket);
    const interception = runtime.interceptionOf(socket);
    if (client.destination === undefined || interception !== undefined) startUpgradeFlow(req, socket, head, client, interception);
    else void redirectedRequestHost(runtime, req, client.destination).then((host) => startUpgradeFlow(req, socket, head, client, interception, host));
  };

  function startUpgradeFlow(req: IncomingMessage, socket: Socket, head: Buffer, client: ClientInfo, interception: Interception | undefined, redirectedHost?: string): void {
    const flow = createHttpFlow(runtime.options, runtime.pseudonym, client, req, true, interception, redirectedHost);
    if (flow instanceof ProxyError) {
      runtime.requestRejected(socket, flow);
      writeRawResponse(socket, errorResponse(flow, true));
      closeSoon(socket);
      return;
    }
    const received = flow.clientRequest.headers;
    const protocols = requestedUpgrades(received);
    // Upgrade and Connection are hop-by-hop, yet the origin must see them to switch: restore exactly one of each.
    flow.request.headers.append('Connection', 'Upgrade');
    flow.request.headers.append('Upgrade', received.getAll('upgrade').join(', '));
    runtime.flowStarted(flow);
    void runUpgradeFlow(runtime, flow, socket, head, protocols);
  }
  return handleUpgrade;
}

/**
 * Flows whose response head is on the client socket. Until then a failure (an origin error, a hook's invalid head)
 * can still be answered with an error response; afterwards only closing the connection says it.
 */
const headWritten = new WeakSet<HttpFlow>();

async function runUpgradeFlow(runtime: ProxyRuntime, flow: HttpFlow, socket: Socket, head: Buffer, protocols: string[]): Promise<void> {
  flow.setKillHandler(() => socket.destroy());
  try {
    const pending = runtime.hooks.run('requestHeaders', flow);
    if (pending !== undefined) await pending;
    if (flow.killed) throw flow.error;
    if (flow.response !== undefined) {
      flow.timestamps.responseHeaders = Date.now();
      writeRawResponse(socket, flow.response);
      headWritten.add(flow);
      closeSoon(socket);
      await endFlow(runtime, flow, 'complete');
      return;
    }
    if (runtime.tunnelCount() > runtime.options.maxTunnels) {
      throw new ProxyError('connection_limit_reached', `more than ${runtime.options.maxTunnels} tunnels open`);
    }
    await exchange(runtime, flow, socket, head, protocols);
  } catch (err) {
    answerFailureOnSocket(socket, flow, markFailed(runtime, flow, err), headWritten.has(flow));
    await endFlow(runtime, flow, 'error');
    return;
  }
  await endFlow(runtime, flow, 'complete');
}

/** Opens the connection to the origin along the flow's routes, with TLS on top for wss:// (https://). */
async function openOriginConnection(runtime: ProxyRuntime, flow: HttpFlow): Promise<Socket> {
  const { request } = flow;
  const { socket } = await dialAlongPlan(runtime, flow, { scheme: request.scheme, host: request.host, port: request.port });
  runtime.trackUpstreamSocket(socket);
  if (request.scheme === 'http') return socket;
  const tls = startOriginTls(socket, request.host, runtime.originTls);
  return new Promise((resolve, reject) => {
    tls.once('secureConnect', () => resolve(tls));
    tls.once('error', (err) => {
      socket.destroy();
      reject(toProxyError(err, 'tls_protocol_error'));
    });
  });
}

/**
 * Runs responseHeaders, then writes the head the hooks left on the client socket. Async, so a hook that throws
 * synchronously (inside the http client's event listener) rejects here and fails the flow closed.
 */
async function answerHead(runtime: ProxyRuntime, flow: HttpFlow, socket: Socket, fixedStatus?: 101): Promise<void> {
  await runResponseHeaders(runtime, flow);
  const response = flow.response!;
  // A switch that happened stays a 101: what follows on the connection is the new protocol either way.
  socket.write(serializeHead(fixedStatus ?? response.status, response.reason, response.headers));
  headWritten.add(flow);
}

/** Sends the upgrade request; resolves when the spliced connection (or the relayed refusal) is over. */
async function exchange(runtime: ProxyRuntime, flow: HttpFlow, socket: Socket, head: Buffer, protocols: string[]): Promise<void> {
  const { request } = flow;
  // A socket that switches protocols never returns to a pool, so each upgrade gets its own connection.
  const connection = await openOriginConnection(runtime, flow);
  flow.timestamps.upstreamConnected = Date.now();
  const options = {
    method: request.method,
    path: request.path,
    headers: request.headers.toRaw(),
    createConnection: () => connection,
    timeout: runtime.options.responseTimeoutMs,
  };
  return new Promise<void>((resolve, reject) => {
    const upstreamReq = httpRequest(options);
    flow.setKillHandler(() => {
      upstreamReq.destroy();
      socket.destroy();
    });
    socket.once('close', () => upstreamReq.destroy());
    upstreamReq.on('timeout', () =>
      upstreamReq.destroy(new ProxyError('http_response_timeout', `no answer to the upgrade within ${runtime.options.responseTimeoutMs} ms`)),
    );
    upstreamReq.on('error', (err) => reject(toProxyError(err, 'connection_terminated')));

    upstreamReq.on('upgrade', (upstreamRes: IncomingMessage, upstream: Socket, upstreamHead: Buffer) => {
      upstream.on('error', (err) => runtime.logger.debug({ err, flowId: flow.id }, 'origin socket error during upgrade'));
      upstream.setTimeout(0);
      const facts = takeOriginHead(runtime, flow, upstreamRes, upstreamRes.socket);
      if (facts instanceof ProxyError) {
        upstream.destroy();
        reject(facts);
        return;
      }
      const upgradeValue = facts.upgrade ?? '';
      const chosen = flow.receivedResponse!.headers.getTokens('upgrade').map((p) => p.split('/')[0]!);
      if (chosen.length !== 1 || !protocols.includes(chosen[0]!)) {
        // Splicing onto a protocol the client did not ask for would hand it bytes it cannot parse (Go's
        // ReverseProxy refuses the same way).
        upstream.destroy();
        reject(new ProxyError('http_upgrade_failed', `origin switched to "${upgradeValue}", not one of: ${protocols.join(', ')}`));
        return;
      }
      // Upgrade and Connection are hop-by-hop, yet the client must see them to switch too.
      const { headers } = flow.response!;
      headers.append('Connection', 'Upgrade');
      headers.append('Upgrade', upgradeValue);
      answerHead(runtime, flow, socket, 101)
        .then(async () => {
          const handle = splice(socket, upstream, {
            headAtoB: head,
            headBtoA: upstreamHead,
            tapsAtoB: flow.requestTaps,
            tapsBtoA: flow.responseTaps,
            kernel: runtime.options.kernelSplice,
          });
          flow.setKillHandler(() => handle.abort(flow.error!));
          const unregister = runtime.spliceStarted(handle);
          const result = await handle.done;
          unregister();
          flow.bytes.requestBody = result.aToB;
          flow.bytes.responseBody = result.bToA;
          if (result.error) throw result.error;
        })
        .then(resolve, (err: unknown) => {
          upstream.destroy();
          reject(toProxyError(err, 'proxy_internal_error'));
        });
    });

    upstreamReq.on('response', (upstreamRes: IncomingMessage) => {
      // The origin declined to switch (401, 426, …): relay its answer, then close, since the client's
      // connection is in an undefined state for HTTP after an upgrade attempt.
      upstreamReq.setTimeout(0);
      const facts = takeOriginHead(runtime, flow, upstreamRes, upstreamRes.socket);
      if (facts instanceof ProxyError) {
        upstreamReq.destroy();
        reject(facts);
        return;
      }
      // Relayed close-delimited, whatever the origin's framing was.
      const { headers } = flow.response!;
      headers.delete('content-length');
      headers.append('Connection', 'close');
      // The refusal is a response like any other: responseHeaders sees it (and may change it) before it is sent.
      answerHead(runtime, flow, socket).then(
        async () => {
          // Taps see a refusal like any response: the request had no body, the refusal's body streams past them.
          const requestTaps = flow.requestTaps;
          if (requestTaps !== undefined) {
            try {
              await notifyTaps(requestTaps, 'end');
            } catch (err) {
              upstreamReq.destroy();
              socket.destroy();
              reject(toProxyError(err, 'proxy_internal_error'));
              return;
            }
          }
          const taps = flow.responseTaps;
          if (taps !== undefined) {
            await relayTapped(upstreamRes, socket, taps, (length) => void (flow.bytes.responseBody += length), { mode: 'response' }).then(resolve, (err: unknown) =>
              reject(toProxyError(err, 'http_response_incomplete')),
            );
            return;
          }
          upstreamRes.on('data', (chunk: Buffer) => {
            flow.bytes.responseBody += chunk.length;
          });
          // Close-delimited body (RFC 9112 §6.3 rule 8): the decoded bytes follow and the end of the connection ends it.
          pipeline(upstreamRes, socket, (err) => (err ? reject(toProxyError(err, 'http_response_incomplete')) : resolve()));
        },
        (err: unknown) => {
          upstreamReq.destroy();
          reject(toProxyError(err, 'proxy_internal_error'));
        },
      );
    });
    upstreamReq.end();
  });
}
