import { Counter, Histogram, type Registry } from 'prom-client';
import type { Addon } from '../core/addon.js';
import type { Flow } from '../core/flow.js';

export interface MetricsOptions {
  /** Where the flow metrics are registered; the admin endpoint serves this registry. */
  registry: Registry;
}

/** Seconds; from a cached response (milliseconds) to a long download or tunnel (minutes). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Plain numbers a finished flow adds to; prom-client reads them when scraped. */
class FlowCounts {
  readonly flows = { http: { complete: 0, error: 0 }, tunnel: { complete: 0, error: 0 } };
  readonly errors = new Map<string, number>();
  readonly responses = new Map<number, number>();
  /** Per route id ("direct" or an upstream proxy without credentials): how often it served, failed, was skipped. */
  readonly routes = new Map<string, { served: number; failed: number; skipped: number }>();
  clientToOrigin = 0;
  originToClient = 0;
}

function increment<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * A counter whose values are copied from `read()` at each scrape: prom-client counters have no set(), so it resets
 * and adds what `read()` reports per label set. Totals kept elsewhere (plain numbers, `proxy.stats()`) become
 * counters without touching prom-client on the request path.
 */
export function mirroredCounter(
  registers: Registry[],
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => ReadonlyArray<readonly [Record<string, string>, number]>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/**
 * Prometheus metrics of finished flows: counts by kind and outcome, errors by RFC 9209 type, HTTP responses by
 * status code, bytes each way, durations, and how each route (direct or an upstream proxy) fared. Reads only the
 * flow, like the flow log.
 *
 * A finished flow adds to plain numbers, and the counters copy them when scraped: prom-client hashes the label
 * values on every inc(), even through a `labels()` child, and with four counters incremented per flow
 * `BENCH_ARGS_B='--admin 0' npm run bench:pair -- . . keepalive` read 1.10 and 1.13; now 1.01 (docs/metrics.md).
 * Only the duration histogram is observed per flow.
 *
 * @example
 * const registry = new Registry();
 * createProxy({ addons: [flowLog(), metrics({ registry })] });
 * // serve `await registry.metrics()` with content type `registry.contentType`, or use createAdminServer()
 */
export function metrics(options: MetricsOptions): Addon {
  const registers = [options.registry];
  const counts = new FlowCounts();
  mirroredCounter(registers, 'getaway_flows_total', 'Finished flows (HTTP requests, upgrades, tunnels) by kind and outcome', ['kind', 'outcome'], () =>
    (['http', 'tunnel'] as const).flatMap((kind) => (['complete', 'error'] as const).map((outcome) => [{ kind, outcome }, counts.flows[kind][outcome]] as const)),
  );
  mirroredCounter(registers, 'getaway_flow_errors_total', 'Flows that ended with an error, by RFC 9209 Proxy-Status error type', ['type'], () =>
    [...counts.errors].map(([type, n]) => [{ type }, n] as const),
  );
  mirroredCounter(registers, 'getaway_http_responses_total', 'HTTP responses sent to clients by status code, errors answered by the proxy included', ['code'], () =>
    [...counts.responses].map(([code, n]) => [{ code: String(code) }, n] as const),
  );
  mirroredCounter(registers, 'getaway_bytes_total', 'Body and tunnel bytes relayed, by direction', ['direction'], () => [
    [{ direction: 'client_to_origin' }, counts.clientToOrigin],
    [{ direction: 'origin_to_client' }, counts.originToClient],
  ]);
  mirroredCounter(
    registers,
    'getaway_route_attempts_total',
    'Routes tried for flows, by route ("direct" or an upstream proxy) and outcome: served, failed (and failed over), skipped (unhealthy or cooling down)',
    ['route', 'outcome'],
    () =>
      [...counts.routes].flatMap(([route, outcomes]) =>
        (['served', 'failed', 'skipped'] as const).filter((outcome) => outcomes[outcome] > 0).map((outcome) => [{ route, outcome }, outcomes[outcome]] as const),
      ),
  );
  const durations = new Histogram({ name: 'getaway_flow_duration_seconds', help: 'Time from a flow\'s start to its end, by kind', labelNames: ['kind'] as const, buckets: DURATION_BUCKETS, registers });
  const durationOf = { http: durations.labels('http'), tunnel: durations.labels('tunnel') };

  const record = (flow: Flow, outcome: 'complete' | 'error'): void => {
    counts.flows[flow.kind][outcome]++;
    durationOf[flow.kind].observe(((flow.timestamps.end ?? Date.now()) - flow.timestamps.start) / 1000);
    if (flow.kind === 'http') {
      counts.clientToOrigin += flow.bytes.requestBody;
      counts.originToClient += flow.bytes.responseBody;
    } else {
      counts.clientToOrigin += flow.bytes.clientToServer;
      counts.originToClient += flow.bytes.serverToClient;
    }
    if (flow.response !== undefined) increment(counts.responses, flow.response.status);
    if (flow.error !== undefined) increment(counts.errors, flow.error.type);
    for (const attempt of flow.routeAttempts) {
      let outcomes = counts.routes.get(attempt.route);
      if (outcomes === undefined) {
        outcomes = { served: 0, failed: 0, skipped: 0 };
        counts.routes.set(attempt.route, outcomes);
      }
      outcomes[attempt.outcome]++;
    }
  };

  return {
    name: 'metrics',
    response: (flow) => record(flow, 'complete'),
    tunnelClosed: (flow) => record(flow, flow.error === undefined ? 'complete' : 'error'),
    error: (flow) => record(flow, 'error'),
  };
}
