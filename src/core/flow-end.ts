import type { Flow } from './flow.js';
import type { ProxyRuntime } from './runtime.js';

/**
 * Ends a flow exactly once: stamps the end time, runs its closing hook (`error` for a failed flow, else
 * `response` or `tunnelClosed`) and unregisters it. The client has its answer by now, so a failing hook can
 * only be logged: there is no status left to change.
 */
export async function endFlow(runtime: ProxyRuntime, flow: Flow, outcome: 'complete' | 'error'): Promise<void> {
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
