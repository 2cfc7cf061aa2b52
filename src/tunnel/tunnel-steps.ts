/**
 * The steps a CONNECT goes through once decided, shared by plain tunnels and intercepted ones (which fall back to
 * a plain tunnel for non-TLS traffic): fail before opening, open (200 + tunnelOpened), splice until closed.
 */
import type { Socket } from 'node:net';
import { ProxyError } from '../core/errors.js';
import type { TunnelFlow } from '../core/flow.js';
import { endFlow, markFailed } from '../core/flow-end.js';
import { HeaderList } from '../core/header-list.js';
import type { ProxyRuntime } from '../runtime.js';
import { answerFailureOnSocket } from '../http/error-response.js';
import type { ReadRelay } from './read-relay.js';
import { splice } from './splice.js';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');

/** The tunnel never opened: answer with the error (unless killed) and end the flow in `error`. */
export async function failTunnel(runtime: ProxyRuntime, flow: TunnelFlow, socket: Socket, err: unknown): Promise<void> {
  const error = markFailed(runtime, flow, err);
  // A redirected connection has no proxy to hear an error from: closing it is the answer (a TCP reset to the client).
  if (flow.redirected) socket.resetAndDestroy();
  else answerFailureOnSocket(socket, flow, error, false);
  await endFlow(runtime, flow, 'error');
}

/** Sends the 2xx (not to a redirected connection, which asked for none) and runs `tunnelOpened`. A failing hook kills the flow (the tunnel closes, fail closed). */
export async function openTunnel(runtime: ProxyRuntime, flow: TunnelFlow, socket: Socket): Promise<void> {
  if (!flow.redirected) {
    socket.write(ESTABLISHED);
    flow.response = { status: 200, reason: 'Connection Established', headers: new HeaderList() };
  }
  try {
    const pending = runtime.hooks.run('tunnelOpened', flow);
    if (pending !== undefined) await pending;
  } catch (err) {
    runtime.logger.error({ err, flowId: flow.id }, 'addon failed in tunnelOpened; closing the tunnel');
    flow.kill();
  }
}

/**
 * Copies both ways until both sides are done, then ends the flow in `tunnelClosed`. Not an async function, and its
 * callers return its promise instead of awaiting it: an idle tunnel then waits in one callback on the splice's
 * promise, not in suspended async frames (a generator, its registers and a promise for each), which held about
 * a kilobyte per idle tunnel (`npm run bench:idle-heap`).
 */
export function spliceTunnel(
  runtime: ProxyRuntime,
  flow: TunnelFlow,
  socket: Socket,
  upstream: Socket,
  head: Buffer,
  reader?: ReadRelay,
): Promise<void> {
  const upstreamPlace = runtime.trackUpstreamSocket(upstream);
  flow.timestamps.upstreamConnected ??= Date.now();
  if (flow.killed) {
    socket.destroy();
    upstream.destroy();
  }
  const handle = splice(socket, upstream, {
    headAtoB: head,
    reader,
    tapsAtoB: flow.clientToServerTaps,
    tapsBtoA: flow.serverToClientTaps,
    kernel: runtime.options.kernelSplice,
  });
  // Through the handle, not by destroying the sockets: a tunnel the kernel moves must be stopped there first.
  flow.setKillHandler(() => handle.abort(flow.error!));
  // Nothing here touches either socket again: a tunnel the kernel moves can do without their objects.
  handle.retireSockets?.([runtime.clientPlace(socket), upstreamPlace]);
  const unregister = runtime.spliceStarted(handle);
  return handle.done.then((result) => {
    unregister();
    flow.bytes.clientToServer = result.aToB;
    flow.bytes.serverToClient = result.bToA;
    flow.error ??= result.error;
    return endFlow(runtime, flow, 'complete');
  });
}

/** The client went away while we dialled: nothing to answer, the flow ends in `error`. */
export async function abandonTunnel(runtime: ProxyRuntime, flow: TunnelFlow, upstream: Socket): Promise<void> {
  upstream.destroy();
  markFailed(runtime, flow, new ProxyError('client_aborted', 'client left before the tunnel opened'));
  await endFlow(runtime, flow, 'error');
}
