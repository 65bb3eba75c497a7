/**
 * The few ARI HTTP requests the adapter makes itself (not through ari-client): the credential
 * check before connect() and binary downloads. node:http with `agent: false`, so nothing lingers
 * in a keep-alive pool after stop().
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type HttpFailure =
  | { kind: 'timeout' }
  | { kind: 'aborted' }
  | { kind: 'network'; code: string; message: string };

/** Thrown by httpGet when no HTTP answer came back (the caller maps it to a SwitchboardError). */
export class HttpTransportError extends Error {
  constructor(readonly failure: HttpFailure) {
    super(failure.kind === 'network' ? failure.message : failure.kind);
  }
}

export function basicAuth(username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

/** GET with Basic auth; the whole exchange (headers and body) must finish within `timeoutMs`. */
export function httpGet(url: string, opts: { username: string; password: string; timeoutMs: number; signal?: AbortSignal; accept?: string }): Promise<HttpResult> {
  return new Promise<HttpResult>((resolve, reject) => {
    if (opts.signal?.aborted) { reject(new HttpTransportError({ kind: 'aborted' })); return; }
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    let settled = false;
    const finish = (err: HttpTransportError | undefined, result?: HttpResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) { req.destroy(); reject(err); } else resolve(result as HttpResult);
    };
    const req = send(target, {
      method: 'GET',
      agent: false,
      headers: { Authorization: basicAuth(opts.username, opts.password), Accept: opts.accept ?? 'application/json' },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (e: NodeJS.ErrnoException) => finish(new HttpTransportError({ kind: 'network', code: e.code ?? 'ERESPONSE', message: e.message })));
      res.on('aborted', () => finish(new HttpTransportError({ kind: 'network', code: 'ECONNRESET', message: 'response aborted' })));
    });
    const timer = setTimeout(() => finish(new HttpTransportError({ kind: 'timeout' })), opts.timeoutMs);
    const onAbort = (): void => finish(new HttpTransportError({ kind: 'aborted' }));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e: NodeJS.ErrnoException) => finish(new HttpTransportError({ kind: 'network', code: e.code ?? 'ECONNERROR', message: e.message })));
    req.end();
  });
}

/** Error codes of a request that got no HTTP answer because the connection failed. */
const TRANSPORT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ENOTCONN', 'ERR_STREAM_DESTROYED',
]);
/** The same, as Node words them in a message (`connect ECONNREFUSED 127.0.0.1:8088`, `socket hang up`, `write EPIPE`). */
const TRANSPORT_TEXT = /\b(ECONNRESET|ECONNREFUSED|ECONNABORTED|EPIPE|EHOSTUNREACH|ENETUNREACH|ENETDOWN|EHOSTDOWN)\b|^socket hang up$|^read ETIMEDOUT$|^connect ETIMEDOUT/;

/**
 * True when `err` is a transport failure of an HTTP request (the connection was refused, reset,
 * hung up, or the write failed): Asterisk's answer, if it sent one, never arrived. Node's errors
 * carry the code (`err.code`); libraries that rewrap them keep at least the message.
 */
export function isTransportFailure(err: unknown): boolean {
  if (err instanceof HttpTransportError) return err.failure.kind === 'network';
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && TRANSPORT_CODES.has(code)) return true;
  // An answer's body (ari-client's errors carry it as the message) is never a transport failure.
  const text = err.message.trim();
  return !text.startsWith('{') && TRANSPORT_TEXT.test(text);
}

/** `{"message":"Channel not found"}` → 'Channel not found'; anything else → the trimmed text. */
export function peerMessage(body: Buffer | string): string {
  const text = (typeof body === 'string' ? body : body.toString('utf8')).trim();
  if (!text) return '';
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') {
      const m = (parsed as { message?: unknown; error?: unknown }).message ?? (parsed as { error?: unknown }).error;
      if (typeof m === 'string') return m;
    }
  } catch {
    // not JSON
  }
  return text.length > 300 ? text.slice(0, 300) + '…' : text;
}
