/**
 * The ARI wire rules that both fakes of Asterisk follow — test/fakes/ari-server.ts (the tests) and
 * src/bench/e2e/fake-ari.ts (the benchmark) — in one place, so that they cannot drift apart:
 *
 * - the api-docs (Asterisk's own swagger 1.2 files, a subset in test/fakes/ari-docs) and the routes
 *   they declare, with literal segments winning over templates (`/recordings/stored` before
 *   `/recordings/{recordingName}`);
 * - Asterisk's handler-tree walk for a RESTRequest uri (it stops at the first empty segment);
 * - parsing a RESTRequest frame as `parse_rest_request_msg` of Asterisk's
 *   res/ari/ari_websocket_requests.c does, with its 400 messages;
 * - a RESTResponse frame, and an event, with their keys in Asterisk's order, and its timestamp format.
 *
 * Nothing here is switchboard code: it describes the peer.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export type Json = Record<string, unknown>;

export interface ParamDoc { name: string; paramType: string; required?: boolean; dataType: string }
export interface OperationDoc { httpMethod: string; nickname: string; responseClass: string; parameters?: ParamDoc[] }
export interface ApiDoc { path: string; operations: OperationDoc[] }
export interface ResourceDoc { basePath: string; resourcePath: string; apis: ApiDoc[]; models: Json; [k: string]: unknown }

/** One operation of the api-docs, as a route. */
export interface AriRoute {
  resource: string;
  nickname: string;
  /** `resource.nickname`, e.g. `channels.answer`. */
  op: string;
  method: string;
  /** Matches `/ari/<path>`; one group per path parameter. */
  regex: RegExp;
  pathParams: string[];
  params: ParamDoc[];
  literalSegments: number;
}

export interface AriDocs {
  resources: Json & { apis: { path: string }[] };
  docs: Map<string, ResourceDoc>;
  /** Every operation, literal segments first. */
  routes: AriRoute[];
}

/** Reads resources.json and each resource's doc from `dir`, and builds the routes. */
export function loadAriDocs(dir: string): AriDocs {
  const resources = JSON.parse(readFileSync(path.join(dir, 'resources.json'), 'utf8')) as AriDocs['resources'];
  const docs = new Map<string, ResourceDoc>();
  const routes: AriRoute[] = [];
  for (const api of resources.apis) {
    const resource = api.path.replace(/^\/api-docs\//, '').replace('.{format}', '');
    const doc = JSON.parse(readFileSync(path.join(dir, `${resource}.json`), 'utf8')) as ResourceDoc;
    docs.set(resource, doc);
    for (const a of doc.apis) {
      const pathParams: string[] = [];
      const src = `/ari${a.path}`.replace(/[.+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
        pathParams.push(name);
        return '([^/]+)';
      });
      for (const op of a.operations) {
        routes.push({
          resource, nickname: op.nickname, op: `${resource}.${op.nickname}`, method: op.httpMethod.toUpperCase(), regex: new RegExp(`^${src}$`),
          pathParams, params: op.parameters ?? [], literalSegments: a.path.split('/').length - pathParams.length,
        });
      }
    }
  }
  routes.sort((a, b) => b.literalSegments - a.literalSegments);
  return { resources, docs, routes };
}

/** The route for `method` on `/ari/...` `pathname`, with its match (path parameters in groups). */
export function findRoute(routes: readonly AriRoute[], method: string, pathname: string): { route: AriRoute; match: RegExpExecArray } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const match = route.regex.exec(pathname);
    if (match) return { route, match };
  }
  return undefined;
}

/** The path parameters of a match, decoded. */
export function pathParams(route: AriRoute, match: RegExpExecArray, into: Record<string, string> = {}): Record<string, string> {
  route.pathParams.forEach((name, i) => { into[name] = decodeURIComponent(match[i + 1] ?? ''); });
  return into;
}

/**
 * Where Asterisk's handler-tree walk ends for a RESTRequest uri (relative to /ari/): segment by
 * segment up to the first empty one, so a leading slash ends at the root (null: it has no
 * operation, 405) and `channels//x` at `/ari/channels`.
 */
export function handlerTreePath(uri: string): string | null {
  const segments: string[] = [];
  for (const s of uri.split('/')) {
    if (s === '') break;
    segments.push(s);
  }
  return segments.length ? `/ari/${segments.join('/')}` : null;
}

/** Methods Asterisk's ast_get_http_method_from_string knows (case-sensitive). */
export const WS_METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** A RESTRequest frame as Asterisk reads it. */
export interface RestRequest {
  transactionId: string;
  requestId: string;
  method: string;
  /** Relative to /ari/, without its `?query`. */
  uri: string;
  /** The uri's query, then `query_strings`, then a form-urlencoded body (last value wins; no `api_key`). */
  query: Record<string, string>;
  /** A JSON `message_body`, parsed (undefined without one). */
  body: unknown;
}

/** A frame Asterisk answers 400 without dispatching it: the RESTResponse's reason and uri, and its message (none: no body). */
export interface RestRequestRefusal {
  transactionId: string;
  requestId: string;
  reasonPhrase: string;
  uri: string;
  message?: string;
}

/**
 * parse_rest_request_msg of Asterisk's ari_websocket_requests.c: the request, or why Asterisk
 * answers 400 (text that is not a JSON object or array: "Failed to parse request message JSON",
 * with no body; anything else: "Bad request" with Asterisk's message, and the uri once it was read).
 */
export function parseRestRequest(text: string): { ok: true; request: RestRequest } | { ok: false; refusal: RestRequestRefusal } {
  let msg: unknown;
  try { msg = JSON.parse(text); } catch { msg = undefined; }
  // Jansson (without JSON_DECODE_ANY) accepts only an object or an array at the top.
  if (msg === null || typeof msg !== 'object') {
    return { ok: false, refusal: { transactionId: '', requestId: '', reasonPhrase: 'Failed to parse request message JSON', uri: '' } };
  }
  const m = (Array.isArray(msg) ? {} : msg) as Json;
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const transactionId = str(m['transaction_id']) ?? '';
  const requestId = str(m['request_id']) ?? '';
  const bad = (message: string, uri = ''): { ok: false; refusal: RestRequestRefusal } => ({ ok: false, refusal: { transactionId, requestId, reasonPhrase: 'Bad request', uri, message } });
  const type = str(m['type']);
  if (!type) return bad("No 'type' property.");
  if (type !== 'RESTRequest') return bad('Unknown request type.');
  const fullUri = str(m['uri']);
  if (!fullUri) return bad("Empty or missing 'uri' property.");
  const q = fullUri.indexOf('?');
  const uri = q >= 0 ? fullUri.slice(0, q) : fullUri;
  const pairs: [string, string][] = q >= 0 ? [...new URLSearchParams(fullUri.slice(q + 1))] : [];
  const method = str(m['method']);
  if (!method || !WS_METHODS.has(method)) return bad("Unknown or missing 'method' property.", uri);
  const qs = m['query_strings'];
  if (qs !== undefined) {
    const ok = Array.isArray(qs) && qs.every((x) => x !== null && typeof x === 'object' && typeof (x as Json)['name'] === 'string' && typeof (x as Json)['value'] === 'string');
    if (!ok) return bad("Unable to parse 'query_strings' array.", uri);
    for (const x of qs as { name: string; value: string }[]) pairs.push([x.name, x.value]);
  }
  let body: unknown;
  const messageBody = str(m['message_body']);
  if (messageBody) {
    const contentType = str(m['content_type']);
    if (!contentType) return bad("No 'content_type' for 'message_body'.", uri);
    if (contentType === 'application/x-www-form-urlencoded') {
      const vars = [...new URLSearchParams(messageBody)];
      if (vars.length === 0) return bad("Unable to parse 'message_body' as 'application/x-www-form-urlencoded'.", uri);
      pairs.push(...vars);
    } else if (contentType === 'application/json') {
      try { body = JSON.parse(messageBody); } catch { body = undefined; }
      if (body === null || typeof body !== 'object') return bad("Unable to parse 'message_body' as 'application/json'.", uri);
    } else {
      return bad('Unknown content type.', uri);
    }
  }
  const query: Record<string, string> = {};
  for (const [k, v] of pairs) if (k !== 'api_key') query[k] = v;
  return { ok: true, request: { transactionId, requestId, method, uri, query, body } };
}

/**
 * The query parameters an operation takes from a JSON object body, as Asterisk's generated
 * *_parse_body functions do (the body's values win over the query string's), added to `params`.
 */
export function bodyParams(route: AriRoute, body: unknown, params: Record<string, string>): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
  for (const p of route.params) {
    if (p.paramType !== 'query') continue;
    const v = (body as Json)[p.name];
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') params[p.name] = String(v);
  }
}

/** A RESTResponse frame Asterisk sends on an events WebSocket (keys in Asterisk's order). */
export interface RestResponseFrame {
  type: 'RESTResponse';
  transaction_id: string;
  request_id: string;
  status_code: number;
  reason_phrase: string;
  uri: string;
  content_type?: string;
  message_body?: string;
  application: string;
  timestamp: string;
  asterisk_id: string;
}

/** The frame for an answer: no content_type/message_body without a body; a string body is sent as it is. */
export function restResponseFrame(
  head: { transactionId: string; requestId: string; status: number; reasonPhrase: string; uri: string },
  body: unknown,
  app: string,
  asteriskId: string,
): RestResponseFrame {
  return {
    type: 'RESTResponse', transaction_id: head.transactionId, request_id: head.requestId,
    status_code: head.status, reason_phrase: head.reasonPhrase, uri: head.uri,
    ...(body === undefined ? {} : { content_type: 'application/json', message_body: typeof body === 'string' ? body : JSON.stringify(body) }),
    application: app, timestamp: asteriskTime(), asterisk_id: asteriskId,
  };
}

/**
 * An event as Asterisk writes it on the events socket, keys in its order (Asterisk 22.10.1's own
 * output, captured): `type`, `timestamp`, the event's fields, `asterisk_id`, `application`; except
 * ChannelHangupRequest and ChannelVarset, whose own fields come first, and DeviceStateChanged
 * (`type`, `application`, `timestamp`, `device_state`, `asterisk_id`). `evt`'s own timestamp and
 * asterisk_id win over the defaults.
 */
export function asteriskEvent(evt: { type: string; [key: string]: unknown }, app: string, asteriskId: string): Record<string, unknown> {
  const { type, timestamp = asteriskTime(), asterisk_id = asteriskId, application: _ignored, ...fields } = evt;
  if (type === 'DeviceStateChanged') return { type, application: app, timestamp, ...fields, asterisk_id };
  if (type === 'ChannelHangupRequest' || type === 'ChannelVarset') {
    const { channel, ...own } = fields;
    return { ...own, type, timestamp, ...(channel === undefined ? {} : { channel }), asterisk_id, application: app };
  }
  return { type, timestamp, ...fields, asterisk_id, application: app };
}

let lastTimeMs = -1;
let lastTimeText = '';

/** Asterisk's timestamp format: 2024-05-01T10:20:30.123+0000 (now, unless a date is given). */
export function asteriskTime(d?: Date): string {
  if (d) return d.toISOString().replace('Z', '+0000');
  // Made once per millisecond: a Date and its text per answer and event was ~8% of the bench fake's time.
  const now = Date.now();
  if (now !== lastTimeMs) {
    lastTimeMs = now;
    lastTimeText = new Date(now).toISOString().replace('Z', '+0000');
  }
  return lastTimeText;
}
