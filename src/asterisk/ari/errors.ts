/**
 * Maps what ari-client rejects with (a plain Error whose message is the raw response body, e.g.
 * `{"message":"Channel not found"}`, an empty message for an empty body, or a plain string from
 * swagger-client such as "channelId is a required path param.") to switchboard's error classes.
 */
import { PeerAuthError, PeerRequestError, SwitchboardError, errorMessage } from '../../errors.js';
import { isTransportFailure, peerMessage } from './http.js';

export const ARI_PEER = 'ARI';

/**
 * Asterisk answered an ARI request with an error. `notFound`: the object (channel, recording, ...)
 * does not exist. `details.unreachable`: no answer came from Asterisk at all (the connection was
 * refused, reset or hung up: ECONNRESET, ECONNREFUSED, "socket hang up", EPIPE, ...), so the
 * request's fate is unknown; the workflow treats it as a lost connection.
 */
export class AriRequestError extends PeerRequestError {
  readonly notFound: boolean;
  /** HTTP status when known (ari-client drops it; our own requests keep it). */
  readonly status: number | undefined;
  /** Asterisk's own message, e.g. 'Channel not found'. */
  readonly peerMessage: string;

  constructor(what: string, message: string, opts: { status?: number; notFound?: boolean; unreachable?: boolean } = {}) {
    const unreachable = opts.unreachable === true;
    const notFound = !unreachable && (opts.notFound ?? (opts.status === 404 || /\bnot found\b/i.test(message)));
    super(ARI_PEER, what, message || '(empty error response)', {
      notFound, status: opts.status, peerMessage: message, ...(unreachable ? { unreachable: true } : {}),
    });
    this.notFound = notFound;
    this.status = opts.status;
    this.peerMessage = message;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof AriRequestError && err.notFound;
}

/** Turns anything ari-client rejected with into a SwitchboardError; `scrub` removes secrets from text. */
export function toAriError(what: string, err: unknown, scrub: (s: string) => string = (s) => s): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  let message: string;
  let status: number | undefined;
  // No answer from Asterisk at all (a transport error of the HTTP request): the request's fate is unknown.
  if (isTransportFailure(err)) {
    return new AriRequestError(what, `cannot reach Asterisk (${scrub(errorMessage(err))})`, { unreachable: true });
  }
  if (err instanceof Error) {
    message = peerMessage(err.message);
  } else if (typeof err === 'string') {
    // swagger-client's own failures: "401 : Unauthorized http://…", "x is a required path param."
    const m = /^(\d{3}) : /.exec(err);
    if (m) status = Number(m[1]);
    message = err;
  } else if (err && typeof err === 'object' && 'status' in err) {
    const o = err as { status?: unknown; data?: unknown };
    status = typeof o.status === 'number' ? o.status : undefined;
    message = Buffer.isBuffer(o.data) || typeof o.data === 'string' ? peerMessage(o.data) : '';
  } else {
    message = errorMessage(err);
  }
  message = scrub(message);
  if (status === 401 || /^authentication required$/i.test(message)) {
    return new PeerAuthError(ARI_PEER, `${what}: Asterisk answered 401 (${message})`);
  }
  return new AriRequestError(what, message, status === undefined ? {} : { status });
}
