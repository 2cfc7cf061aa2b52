import { Counter, Histogram, type Registry } from 'prom-client';
import type { Addon } from '../core/addon.js';
import type { Flow } from '../core/flow.js';

export interface MetricsOptions {
  /** Where the flow metrics are registered; the admin endpoint serves this registry. */
  registry: Registry;
}

/** Seconds; from a cached response (milliseconds) to a long download or tunnel (minutes). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Prometheus metrics of finished flows: counts by kind and outcome, errors by RFC 9209 type, HTTP responses by
 * status code, bytes each way, durations. Reads only the flow, like the flow log. Counters per label value are
 * looked up once (prom-client's `labels()` hashes its arguments on every call), so a flow costs a few additions.
 *
 * @example
 * const registry = new Registry();
 * createProxy({ addons: [flowLog(), metrics({ registry })] });
 * // serve `await registry.metrics()` with content type `registry.contentType`, or use createAdminServer()
 */
export function metrics(options: MetricsOptions): Addon {
  const registers = [options.registry];
  const flows = new Counter({ name: 'getaway_flows_total', help: 'Finished flows (HTTP requests, upgrades, tunnels) by kind and outcome', labelNames: ['kind', 'outcome'] as const, registers });
  const errors = new Counter({ name: 'getaway_flow_errors_total', help: 'Flows that ended with an error, by RFC 9209 Proxy-Status error type', labelNames: ['type'] as const, registers });
  const responses = new Counter({ name: 'getaway_http_responses_total', help: 'HTTP responses sent to clients by status code, errors answered by the proxy included', labelNames: ['code'] as const, registers });
  const bytes = new Counter({ name: 'getaway_bytes_total', help: 'Body and tunnel bytes relayed, by direction', labelNames: ['direction'] as const, registers });
  const durations = new Histogram({ name: 'getaway_flow_duration_seconds', help: 'Time from a flow\'s start to its end, by kind', labelNames: ['kind'] as const, buckets: DURATION_BUCKETS, registers });

  const flowCounters = {
    http: { complete: flows.labels('http', 'complete'), error: flows.labels('http', 'error') },
    tunnel: { complete: flows.labels('tunnel', 'complete'), error: flows.labels('tunnel', 'error') },
  };
  const durationOf = { http: durations.labels('http'), tunnel: durations.labels('tunnel') };
  const up = bytes.labels('client_to_origin');
  const down = bytes.labels('origin_to_client');
  const responsesByCode = new Map<number, Counter.Internal>();
  const errorsByType = new Map<string, Counter.Internal>();

  const record = (flow: Flow, outcome: 'complete' | 'error'): void => {
    flowCounters[flow.kind][outcome].inc();
    durationOf[flow.kind].observe(((flow.timestamps.end ?? Date.now()) - flow.timestamps.start) / 1000);
    if (flow.kind === 'http') {
      up.inc(flow.bytes.requestBody);
      down.inc(flow.bytes.responseBody);
    } else {
      up.inc(flow.bytes.clientToServer);
      down.inc(flow.bytes.serverToClient);
    }
    const status = flow.response?.status;
    if (status !== undefined) {
      let counter = responsesByCode.get(status);
      if (counter === undefined) {
        counter = responses.labels(String(status));
        responsesByCode.set(status, counter);
      }
      counter.inc();
    }
    if (flow.error !== undefined) {
      let counter = errorsByType.get(flow.error.type);
      if (counter === undefined) {
        counter = errors.labels(flow.error.type);
        errorsByType.set(flow.error.type, counter);
      }
      counter.inc();
    }
  };

  return {
    name: 'metrics',
    response: (flow) => record(flow, 'complete'),
    tunnelClosed: (flow) => record(flow, flow.error === undefined ? 'complete' : 'error'),
    error: (flow) => record(flow, 'error'),
  };
}
