/**
 * The few ARI HTTP requests the adapter makes itself (not through ari-client): the credential
 * check before connect() and binary downloads. node:http with `agent: false`, so nothing lingers
 * in a keep-alive pool after stop().
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
/** Thrown by httpGet when no HTTP answer came back (the caller maps it to a SwitchboardError). */
export class HttpTransportError extends Error {
    failure;
    constructor(failure) {
        super(failure.kind === 'network' ? failure.message : failure.kind);
        this.failure = failure;
    }
}
export function basicAuth(username, password) {
    return 'Basic ' + Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}
/** GET with Basic auth; the whole exchange (headers and body) must finish within `timeoutMs`. */
export function httpGet(url, opts) {
    return new Promise((resolve, reject) => {
        if (opts.signal?.aborted) {
            reject(new HttpTransportError({ kind: 'aborted' }));
            return;
        }
        const target = new URL(url);
        const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
        let settled = false;
        const finish = (err, result) => {
            if (settled)
                return;
            settled = true;
            clearTimeout(timer);
            opts.signal?.removeEventListener('abort', onAbort);
            if (err) {
                req.destroy();
                reject(err);
            }
            else
                resolve(result);
        };
        const req = send(target, {
            method: 'GET',
            agent: false,
            headers: { Authorization: basicAuth(opts.username, opts.password), Accept: opts.accept ?? 'application/json' },
        }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
            res.on('error', (e) => finish(new HttpTransportError({ kind: 'network', code: e.code ?? 'ERESPONSE', message: e.message })));
            res.on('aborted', () => finish(new HttpTransportError({ kind: 'network', code: 'ECONNRESET', message: 'response aborted' })));
        });
        const timer = setTimeout(() => finish(new HttpTransportError({ kind: 'timeout' })), opts.timeoutMs);
        const onAbort = () => finish(new HttpTransportError({ kind: 'aborted' }));
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        req.on('error', (e) => finish(new HttpTransportError({ kind: 'network', code: e.code ?? 'ECONNERROR', message: e.message })));
        req.end();
    });
}
/** `{"message":"Channel not found"}` → 'Channel not found'; anything else → the trimmed text. */
export function peerMessage(body) {
    const text = (typeof body === 'string' ? body : body.toString('utf8')).trim();
    if (!text)
        return '';
    try {
        const parsed = JSON.parse(text);
        if (parsed && typeof parsed === 'object') {
            const m = parsed.message ?? parsed.error;
            if (typeof m === 'string')
                return m;
        }
    }
    catch {
        // not JSON
    }
    return text.length > 300 ? text.slice(0, 300) + '…' : text;
}
//# sourceMappingURL=http.js.map