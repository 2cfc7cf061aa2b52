import type { Logger } from 'pino';
import type { Addon } from '../core/addon.js';
import type { Flow } from '../core/flow.js';
import { formatAbsoluteUrl, formatAuthority, isDefaultPort, isIPv6 } from '../http/request-target.js';
import { jsonLineSink, type JsonLineSink } from '../log/json-lines.js';
import type { LineBytes } from '../log/line-bytes.js';

/** The fields of the one log line written per finished flow. */
export interface FlowLogRecord {
  flowId: string;
  kind: 'http' | 'tunnel';
  client: string;
  /** Where a redirected client was going (a transparent listener's original destination), as address:port. */
  destination: string | undefined;
  /** The authenticated user (never the password, never the header). */
  user: string | undefined;
  method: string;
  target: string;
  status: number | undefined;
  /** Bytes from the client towards the origin (request body, or tunnel payload). */
  bytesUp: number;
  /** Bytes from the origin towards the client. */
  bytesDown: number;
  durationMs: number;
  upstream: string | undefined;
  /** Routes that failed or were skipped before the one that served (or before giving up), with reasons. */
  attempts: string[] | undefined;
  error: string | undefined;
  errorDetails: string | undefined;
}

function describeAttempts(flow: Flow): string[] | undefined {
  const attempts = flow.routeAttempts;
  // Only worth a field when something other than the first route was involved.
  if (attempts.length === 0 || (attempts.length === 1 && attempts[0]!.outcome === 'served')) return undefined;
  return attempts.map((a) => (a.reason === undefined ? `${a.route} ${a.outcome}` : `${a.route} ${a.outcome}: ${a.reason}`));
}

/** One object of one shape for both kinds (it is built per request, so no spreads or intermediate objects). */
export function describeFlow(flow: Flow): FlowLogRecord {
  const http = flow.kind === 'http';
  return {
    flowId: flow.id,
    kind: flow.kind,
    client: `${flow.client.remoteAddress}:${flow.client.remotePort}`,
    destination: flow.client.destination === undefined ? undefined : formatAuthority(flow.client.destination.host, flow.client.destination.port),
    user: flow.user,
    method: http ? flow.request.method : 'CONNECT',
    target: http ? formatAbsoluteUrl(flow.request) : `${flow.target.host}:${flow.target.port}`,
    status: flow.response?.status,
    bytesUp: http ? flow.bytes.requestBody : flow.bytes.clientToServer,
    bytesDown: http ? flow.bytes.responseBody : flow.bytes.serverToClient,
    durationMs: (flow.timestamps.end ?? Date.now()) - flow.timestamps.start,
    upstream: flow.upstream,
    attempts: describeAttempts(flow),
    error: flow.error?.type,
    errorDetails: flow.error?.message,
  };
}

/** The line's message, the same on both paths: `GET http://host/path 200`, `-` for no status. */
export function flowMessage(method: string, target: string, status: number | undefined): string {
  return `${method} ${target} ${status ?? '-'}`;
}

const SPACE = 0x20;
const QUOTE = 0x22;
const COLON = 0x3a;

function optionalField(out: LineBytes, name: string, value: string | undefined): void {
  if (value === undefined) return;
  out.ascii(name);
  out.string(value);
}

/**
 * The flow's line as pino would write describeFlow's record with its message, after the sink's head: the same
 * fields in the same order, undefined ones left out, strings escaped as JSON.stringify escapes them
 * (test/addons/flow-log.test.ts compares the bytes with pino's), written in place without the record object or the
 * line as a string. A string is split into pieces only at ASCII characters, where escaping one piece cannot differ
 * from escaping the whole (a surrogate pair is never cut).
 */
export function writeFlowFields(out: LineBytes, flow: Flow): void {
  const http = flow.kind === 'http';
  const destination = flow.client.destination;
  const method = http ? flow.request.method : 'CONNECT';
  const status = flow.response?.status;
  const attempts = describeAttempts(flow);
  // flowId (a UUID) and kind need no escaping.
  out.ascii(',"flowId":"');
  out.ascii(flow.id);
  out.ascii(http ? '","kind":"http","client":"' : '","kind":"tunnel","client":"');
  out.chars(flow.client.remoteAddress);
  out.byte(COLON);
  out.number(flow.client.remotePort);
  out.byte(QUOTE);
  optionalField(out, ',"destination":', destination === undefined ? undefined : formatAuthority(destination.host, destination.port));
  optionalField(out, ',"user":', flow.user);
  out.ascii(',"method":');
  out.string(method);
  out.ascii(',"target":"');
  writeTarget(out, flow);
  out.byte(QUOTE);
  if (status !== undefined) {
    out.ascii(',"status":');
    out.number(status);
  }
  out.ascii(',"bytesUp":');
  out.number(http ? flow.bytes.requestBody : flow.bytes.clientToServer);
  out.ascii(',"bytesDown":');
  out.number(http ? flow.bytes.responseBody : flow.bytes.serverToClient);
  out.ascii(',"durationMs":');
  out.number((flow.timestamps.end ?? Date.now()) - flow.timestamps.start);
  optionalField(out, ',"upstream":', flow.upstream);
  if (attempts !== undefined) {
    out.ascii(',"attempts":');
    out.utf8(JSON.stringify(attempts));
  }
  optionalField(out, ',"error":', flow.error?.type);
  optionalField(out, ',"errorDetails":', flow.error?.message);
  out.ascii(',"msg":"');
  out.chars(method);
  out.byte(SPACE);
  writeTarget(out, flow);
  out.byte(SPACE);
  if (status === undefined) out.byte(0x2d);
  else out.number(status);
  out.ascii('"}\n');
}

/**
 * The target's JSON text, unquoted: formatAbsoluteUrl's for a request, host:port for a tunnel, written in pieces
 * instead of joined first. The pieces meet at ASCII characters, except a host followed straight by its path (the
 * port left out): a path that does not start with ASCII is written with the host as one string.
 */
function writeTarget(out: LineBytes, flow: Flow): void {
  if (flow.kind === 'tunnel') {
    out.chars(flow.target.host);
    out.byte(COLON);
    out.number(flow.target.port);
    return;
  }
  const { scheme, host, port, path } = flow.request;
  const showPort = !isDefaultPort(scheme, port);
  if (!showPort && path.length > 0 && path.charCodeAt(0) > 0x7e) {
    out.chars(formatAbsoluteUrl(flow.request));
    return;
  }
  out.chars(scheme);
  out.ascii('://');
  if (isIPv6(host)) {
    out.byte(0x5b);
    out.chars(host);
    out.byte(0x5d);
  } else out.chars(host);
  if (showPort) {
    out.byte(COLON);
    out.number(port);
  }
  out.chars(path);
}

/**
 * One structured log line per finished flow (HTTP request, upgrade or tunnel), at info level, or warn when the
 * flow failed. Reads only the flow, like every other consumer.
 *
 * @example
 * createProxy({ logger, addons: [flowLog()] });
 */
export function flowLog(): Addon {
  let logger: Logger | undefined;
  let sink: JsonLineSink | undefined;
  const write = (flow: Flow): void => {
    if (logger === undefined) return;
    const failed = flow.error !== undefined && flow.error.type !== 'client_aborted';
    // Checked first so that `--log-level warn` costs nothing per successful flow, not even building the record.
    if (!logger.isLevelEnabled(failed ? 'warn' : 'info')) return;
    if (sink !== undefined) {
      const level = failed ? 'warn' : 'info';
      sink.writeInPlace(level, writeFlowFields, flow);
      return;
    }
    const record = describeFlow(flow);
    const message = flowMessage(record.method, record.target, record.status);
    if (failed) logger.warn(record, message);
    else logger.info(record, message);
  };
  return {
    name: 'flow-log',
    running(context) {
      logger = context.logger;
      sink = jsonLineSink(logger);
    },
    response: write,
    tunnelClosed: write,
    error: write,
  };
}
