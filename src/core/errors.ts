/**
 * One error class with data instead of a class tree. `type` is the RFC 9209 Proxy-Status error vocabulary, so
 * the same value is what tests assert, what logs show and what the client sees in `Proxy-Status`.
 */
export type ProxyErrorType =
  | 'dns_timeout'
  | 'dns_error'
  | 'destination_not_found'
  | 'destination_unavailable'
  | 'destination_ip_prohibited'
  | 'destination_ip_unroutable'
  | 'connection_refused'
  | 'connection_terminated'
  | 'connection_timeout'
  | 'connection_read_timeout'
  | 'connection_write_timeout'
  | 'connection_limit_reached'
  | 'tls_protocol_error'
  | 'tls_certificate_error'
  | 'tls_alert_received'
  | 'http_request_error'
  | 'http_request_denied'
  | 'http_response_incomplete'
  | 'http_response_header_section_size'
  | 'http_response_header_size'
  | 'http_response_body_size'
  | 'http_response_transfer_coding'
  | 'http_response_content_coding'
  | 'http_response_timeout'
  | 'http_upgrade_failed'
  | 'http_protocol_error'
  | 'proxy_internal_response'
  | 'proxy_internal_error'
  | 'proxy_configuration_error'
  | 'proxy_loop_detected'
  // Not RFC 9209: the client went away. Recorded on the flow, never sent (there is nobody to send it to).
  | 'client_aborted';

/** Recommended statuses from RFC 9209 §2.3 (where it names one) or the closest standard status. */
const STATUS_BY_TYPE: Record<ProxyErrorType, number> = {
  dns_timeout: 504,
  dns_error: 502,
  destination_not_found: 500,
  destination_unavailable: 503,
  destination_ip_prohibited: 403,
  destination_ip_unroutable: 502,
  connection_refused: 502,
  connection_terminated: 502,
  connection_timeout: 504,
  connection_read_timeout: 504,
  connection_write_timeout: 504,
  connection_limit_reached: 503,
  tls_protocol_error: 502,
  tls_certificate_error: 502,
  tls_alert_received: 502,
  http_request_error: 400,
  http_request_denied: 403,
  http_response_incomplete: 502,
  http_response_header_section_size: 502,
  http_response_header_size: 502,
  http_response_body_size: 502,
  http_response_transfer_coding: 502,
  http_response_content_coding: 502,
  http_response_timeout: 504,
  http_upgrade_failed: 502,
  http_protocol_error: 502,
  proxy_internal_response: 500,
  proxy_internal_error: 500,
  proxy_configuration_error: 500,
  proxy_loop_detected: 502,
  client_aborted: 499,
};

export interface ProxyErrorOptions {
  /** Overrides the status recommended for `type` (a 400 for a malformed request line is still `http_request_error`). */
  status?: number;
  cause?: unknown;
  /** The status an upstream proxy answered with, when it refused (a CONNECT answered 403, 407, 429, 5xx…). */
  upstreamStatus?: number;
  /** From the upstream's Retry-After, in ms, when it sent one. */
  retryAfterMs?: number;
  /** See ProxyError.upstreamFault. */
  upstreamFault?: boolean;
  /** See ProxyError.refusedByProxy. */
  refusedByProxy?: boolean;
  /** See ProxyError.responseHeaders. */
  responseHeaders?: readonly string[];
}

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  readonly type: ProxyErrorType;
  readonly status: number;
  readonly upstreamStatus: number | undefined;
  readonly retryAfterMs: number | undefined;
  /**
   * The failure is the upstream proxy's own: it could not be reached, its TLS failed, it refused our credentials
   * or broke its protocol. Only such failures count against its health. A refusal of the target, or a failure
   * behind a working upstream (the origin's DNS, its timeout, its 502), says nothing about the upstream, and
   * counting it would let one client open every circuit with a few CONNECTs to a name that does not exist.
   */
  readonly upstreamFault: boolean;
  /**
   * The proxy itself refused the destination (a loop back to itself, a `dialing` hook, an access rule). No other
   * route is tried: an upstream proxy would reach the same destination without our check, and the refusal says
   * nothing about any route's health.
   */
  readonly refusedByProxy: boolean;
  /**
   * Fields the error response carries besides Proxy-Status, as a flat name/value list: `Proxy-Authenticate` on a
   * 407, for instance.
   */
  readonly responseHeaders: readonly string[] | undefined;

  constructor(type: ProxyErrorType, message: string, options: ProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.type = type;
    this.status = options.status ?? STATUS_BY_TYPE[type];
    this.upstreamStatus = options.upstreamStatus;
    this.retryAfterMs = options.retryAfterMs;
    this.upstreamFault = options.upstreamFault ?? false;
    this.refusedByProxy = options.refusedByProxy ?? false;
    this.responseHeaders = options.responseHeaders;
  }

  /** The same error, marked as the upstream's own fault (see upstreamFault). */
  blamingUpstream(): ProxyError {
    return this.upstreamFault ? this : this.#with({ upstreamFault: true });
  }

  /** The same error, marked as the proxy's own refusal (see refusedByProxy). */
  refusingDestination(): ProxyError {
    return this.refusedByProxy ? this : this.#with({ refusedByProxy: true });
  }

  /** A copy with every option kept but `changes`. */
  #with(changes: ProxyErrorOptions): ProxyError {
    const options: ProxyErrorOptions = { status: this.status, cause: this.cause, upstreamFault: this.upstreamFault, refusedByProxy: this.refusedByProxy };
    if (this.upstreamStatus !== undefined) options.upstreamStatus = this.upstreamStatus;
    if (this.retryAfterMs !== undefined) options.retryAfterMs = this.retryAfterMs;
    if (this.responseHeaders !== undefined) options.responseHeaders = this.responseHeaders;
    return new ProxyError(this.type, this.message, { ...options, ...changes });
  }
}

/** errno / library code → Proxy-Status type, for failures while reaching or talking to the next hop. */
const TYPE_BY_CODE: Record<string, ProxyErrorType> = {
  ENOTFOUND: 'dns_error',
  EAI_AGAIN: 'dns_error',
  EAI_FAIL: 'dns_error',
  EAI_NODATA: 'dns_error',
  EAI_NONAME: 'dns_error',
  ECONNREFUSED: 'connection_refused',
  ETIMEDOUT: 'connection_timeout',
  ECONNRESET: 'connection_terminated',
  EPIPE: 'connection_terminated',
  ECONNABORTED: 'connection_terminated',
  ERR_STREAM_PREMATURE_CLOSE: 'connection_terminated',
  EHOSTUNREACH: 'destination_ip_unroutable',
  ENETUNREACH: 'destination_ip_unroutable',
  EADDRNOTAVAIL: 'destination_ip_unroutable',
  ABORT_ERR: 'connection_timeout',
  UND_ERR_CONNECT_TIMEOUT: 'connection_timeout',
  HPE_INVALID_CONSTANT: 'http_protocol_error',
  HPE_HEADER_OVERFLOW: 'http_response_header_section_size',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'tls_certificate_error',
  SELF_SIGNED_CERT_IN_CHAIN: 'tls_certificate_error',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'tls_certificate_error',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'tls_certificate_error',
  CERT_HAS_EXPIRED: 'tls_certificate_error',
  ERR_TLS_CERT_ALTNAME_INVALID: 'tls_certificate_error',
};

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/**
 * Classifies a failure talking to the next hop by its `code`, never by message text. Anything unknown is
 * `fallback`: the caller knows the phase (dialing, waiting for the response, streaming it).
 */
export function toProxyError(err: unknown, fallback: ProxyErrorType): ProxyError {
  if (err instanceof ProxyError) return err;
  const code = errorCode(err);
  let type = code === undefined ? undefined : TYPE_BY_CODE[code];
  if (type === undefined && code !== undefined) {
    if (code.startsWith('HPE_')) type = 'http_protocol_error';
    else if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) type = 'tls_protocol_error';
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ProxyError(type ?? fallback, code === undefined ? message : `${code}: ${message}`, { cause: err });
}
