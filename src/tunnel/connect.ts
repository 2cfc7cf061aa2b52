/**
 * CONNECT host:port (RFC 9110 §9.3.6): decide (connect hook) → dial → 200 → splice.
 *
 *   client ══CONNECT══▶ getaway ──TCP──▶ host:port
 *   client ◀═══ 200 ═══ getaway
 *   client ◀═══════ bytes both ways, half-close aware ═══════▶ host:port
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ProxyError } from '../core/errors.js';
import { TunnelFlow } from '../core/flow.js';
import { endFlow } from '../core/flow-end.js';
import { HeaderList } from '../core/header-list.js';
import type { ProxyRuntime } from '../runtime.js';
import { closeSoon, errorResponse, writeRawResponse } from '../http/error-response.js';
import { viaNames } from '../http/hop-by-hop.js';
import { checkRequestHead } from '../http/request-limits.js';
import { parseAuthorityForm } from '../http/request-target.js';
import { dialAlongPlan } from './dial-along-plan.js';
import { ReadRelay } from './read-relay.js';
import { runInterceptedTunnel } from '../mitm/tls-interceptor.js';
import { abandonTunnel, failTunnel, openTunnel, spliceTunnel } from './tunnel-steps.js';

export function createConnectHandler(runtime: ProxyRuntime) {
  // One listener for every CONNECT's client socket, not a closure per tunnel.
  function onClientSocketError(this: Socket, err: Error): void {
    runtime.logger.debug({ err, client: runtime.clientInfo(this).id }, 'client socket error');
  }
  return function handleConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    // Node hands the socket over bare: no listener of the HTTP server guards it any more. Paused, so bytes that
    // follow the CONNECT head wait in the socket until the tunnel is spliced.
    socket.on('error', onClientSocketError);
    socket.pause();
    const client = runtime.clientInfo(socket);
    if (client.destination !== undefined) {
      // A redirected client talks to its origin, not to a proxy: a CONNECT here would open a tunnel to anywhere.
      refuseConnect(runtime, socket, new ProxyError('http_request_denied', 'CONNECT is not served on a transparent listener', { status: 405 }));
      return;
    }
    const parsed = parseAuthorityForm(req.url ?? '');
    if (!parsed.ok) {
      refuseConnect(runtime, socket, new ProxyError('http_request_error', `bad CONNECT target: ${parsed.reason}`));
      return;
    }
    const refused = checkRequestHead({ target: req.url ?? '', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders }, runtime.options);
    if (refused !== undefined) {
      refuseConnect(runtime, socket, refused);
      return;
    }
    const { host, port } = parsed.target;
    const headers = new HeaderList(req.rawHeaders);
    if (viaNames(headers, runtime.pseudonym)) {
      refuseConnect(runtime, socket, new ProxyError('proxy_loop_detected', `this CONNECT already passed through this proxy (Via names ${runtime.pseudonym})`));
      return;
    }
    const flow = new TunnelFlow(client, { method: 'CONNECT', target: req.url ?? '', httpVersion: req.httpVersion, headers }, { host, port });
    runtime.flowStarted(flow);
    void runTunnelFlow(runtime, flow, socket, head);
  };
}

/** A CONNECT refused before it became a flow (malformed, over a limit): counted, logged, answered, closed. */
function refuseConnect(runtime: ProxyRuntime, socket: Socket, error: ProxyError): void {
  runtime.requestRejected(socket, error);
  writeRawResponse(socket, errorResponse(error, true));
  closeSoon(socket);
}

/** A tunnel flow from its `connect` hook to its end: a CONNECT's, or a redirected connection's (`flow.redirected`). */
export async function runTunnelFlow(runtime: ProxyRuntime, flow: TunnelFlow, socket: Socket, head: Buffer): Promise<void> {
  flow.setKillHandler(() => socket.destroy());
  let upstream: Socket;
  const reader = new ReadRelay();
  try {
    const pending = runtime.hooks.run('connect', flow);
    if (pending !== undefined) await pending;
    if (flow.killed) throw flow.error;
    if (flow.action === 'deny') {
      const denied = flow.response ?? errorResponse(new ProxyError('http_request_denied', 'CONNECT denied by policy'), true);
      flow.response = denied;
      flow.error = new ProxyError('http_request_denied', `CONNECT denied with ${denied.status}`, { status: denied.status });
      // A redirected client never asked a proxy: an HTTP answer would be garbage in its TLS (or other) stream.
      if (flow.redirected) socket.destroy();
      else {
        writeRawResponse(socket, denied);
        closeSoon(socket);
      }
      await endFlow(runtime, flow, 'error');
      return;
    }
    if (runtime.isClosing()) throw new ProxyError('destination_unavailable', 'proxy is shutting down');
    if (runtime.tunnelCount() > runtime.options.maxTunnels) {
      throw new ProxyError('connection_limit_reached', `more than ${runtime.options.maxTunnels} tunnels open`);
    }
    if (flow.action === 'mitm') {
      if (runtime.mitm === undefined) throw new ProxyError('proxy_configuration_error', 'a hook asked for interception, but no CA is configured (mitm option)');
      await runInterceptedTunnel(runtime, runtime.mitm, flow, socket, head);
      return;
    }
    ({ socket: upstream } = await dialAlongPlan(runtime, flow, { scheme: 'https', ...flow.target }, reader));
  } catch (err) {
    await failTunnel(runtime, flow, socket, err);
    return;
  }
  if (socket.destroyed) {
    await abandonTunnel(runtime, flow, upstream);
    return;
  }
  await openTunnel(runtime, flow, socket);
  // Returned, not awaited: the tunnel's idle life waits on the splice alone (spliceTunnel says why).
  return spliceTunnel(runtime, flow, socket, upstream, head, reader);
}
