import { abortTaps } from './body-tap.js';
import { toProxyError, type ProxyError } from './errors.js';
import type { Flow } from './flow.js';
import type { CoreRuntime } from './runtime.js';

/**
 * The one way a flow fails, for plain requests, upgrades and tunnels alike: the error goes on the flow, every tap
 * hears `abort` with it, and an internal error (a bug or a broken addon) is logged. What the client is told is the
 * caller's, since that depends on the connection (a ServerResponse or a raw socket, head written or not).
 */
export function markFailed(runtime: Pick<CoreRuntime, 'logger'>, flow: Flow, err: unknown): ProxyError {
  const error = toProxyError(err, 'proxy_internal_error');
  flow.error = error;
  if (flow.kind === 'http') {
    abortTaps(flow.requestTaps, error);
    abortTaps(flow.responseTaps, error);
  } else {
    abortTaps(flow.clientToServerTaps, error);
    abortTaps(flow.serverToClientTaps, error);
  }
  if (error.type === 'proxy_internal_error') runtime.logger.error({ err: error, flowId: flow.id }, error.message);
  return error;
}

/**
 * Ends a flow exactly once: stamps the end time, runs its closing hook (`error` for a failed flow, else
 * `response` or `tunnelClosed`) and unregisters it. The client has its answer by now, so a failing hook can
 * only be logged: there is no status left to change.
 */
export async function endFlow(runtime: Pick<CoreRuntime, 'hooks' | 'logger' | 'flowEnded'>, flow: Flow, outcome: 'complete' | 'error'): Promise<void> {
  flow.timestamps.end ??= Date.now();
  try {
    const pending =
      outcome === 'error'
        ? runtime.hooks.run('error', flow)
        : flow.kind === 'http'
          ? runtime.hooks.run('response', flow)
          : runtime.hooks.run('tunnelClosed', flow);
    if (pending !== undefined) await pending;
  } catch (err) {
    runtime.logger.error({ err, flowId: flow.id, outcome }, 'addon failed after the flow ended');
  } finally {
    runtime.flowEnded(flow);
  }
}
