/**
 * `npm run bench:flow-line`: what the flow log's hook costs per line in a loop of its own, on the same synthetic
 * keep-alive flow each time, written to /dev/null: through createLogger's logger (the hand-built line and the
 * LineBatcher, what the CLI runs) and through a plain pino logger on pino's synchronous destination (pino's own call
 * and one write(2) per line, what a library user's logger gets). Set beside `npm run bench:pair` (the same hook
 * inside a proxy under load), it tells the line's own instructions from what it does to the proxy around it.
 */
import { openSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { flowLog, type HttpFlow } from '../src/index.js';
import { createLogger } from '../src/log/create-logger.js';

const LINES = 300_000;
const ROUNDS = 5;

function syntheticFlow(n: number): HttpFlow {
  const now = Date.now();
  return {
    id: `e3b0c442-98fc-1c14-9afb-f4c8996f${String(n % 10_000).padStart(4, '0')}`,
    kind: 'http',
    client: { remoteAddress: '127.0.0.1', remotePort: 40_000 + (n % 20_000), destination: undefined },
    user: undefined,
    request: { method: 'GET', scheme: 'http', host: '127.0.0.1', port: 8080, path: `/1k?x=${n % 7}` },
    response: { status: 200 },
    bytes: { requestBody: 0, responseBody: 1024 },
    timestamps: { start: now - 1, end: now },
    upstream: 'direct',
    routeAttempts: [{ route: 'direct', outcome: 'served' }],
    error: undefined,
  } as unknown as HttpFlow;
}

/** Median ns per line over ROUNDS rounds of LINES lines (the flow is built outside the timed part of each line). */
function measure(logger: Logger): number {
  const addon = flowLog();
  addon.running!({ logger, options: {} } as never);
  const flows = Array.from({ length: 1024 }, (_, i) => syntheticFlow(i));
  const perLine: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < LINES; i++) void addon.response!(flows[i & 1023]!);
    perLine.push(Number(process.hrtime.bigint() - started) / LINES);
  }
  return perLine.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!;
}

const devNull = openSync('/dev/null', 'w');
const batched = measure(createLogger({ level: 'info', pretty: false, fd: devNull }));
const plain = measure(pino({ level: 'info', base: undefined }, pino.destination({ dest: devNull, sync: true })));
console.log(`flow log line, createLogger (hand-built, batched): ${(batched / 1000).toFixed(2)} µs`);
console.log(`flow log line, plain pino logger (pino's call, a write per line): ${(plain / 1000).toFixed(2)} µs`);
