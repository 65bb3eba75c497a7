import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** One message the server accepted (answered 250 to the end of DATA). */
export interface ReceivedMessage {
  from: string;
  to: string[];
  /** The message as sent (headers + body, CRLF line ends). */
  raw: string;
}

export interface TestSmtpServer {
  readonly port: number;
  /** Accepted messages, in order. */
  readonly messages: ReceivedMessage[];
  /** Successful logins (for checking that the client authenticated). */
  readonly logins: { username: string; password: string }[];
  /** How many RCPT TO commands were refused because of `setReject`. */
  readonly rejections: number;
  /** true: stop listening (clients get ECONNREFUSED) and drop open sessions; false: listen again on the same port. */
  setDown(down: boolean): Promise<void>;
  /** Refuse every recipient with this SMTP code (e.g. 550, 451); null accepts again. */
  setReject(code: number | null, message?: string): void;
  stop(): Promise<void>;
}

export interface SmtpServerOptions {
  /** When set, logins must use exactly these credentials (else 535). Logins are optional either way. */
  credentials?: { username: string; password: string };
}

/**
 * A real SMTP server on 127.0.0.1 (random port), plain text, no STARTTLS, login optional: what
 * nodemailer talks to with `ignoreTLS: true`. Drive it from tests with `setDown` / `setReject`.
 */
export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMessage[] = [];
  const logins: { username: string; password: string }[] = [];
  let reject: { code: number; message: string } | null = null;
  let rejections = 0;
  let down = false;

  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    // No reverse DNS lookup of the client (tests need no resolver). smtp-server still waits a fixed
    // 100 ms before its greeting (early-talker check), so each delivery takes ~100 ms.
    disableReverseLookup: true,
    onAuth(auth, _session, callback) {
      const username = auth.username ?? '';
      const password = auth.password ?? '';
      const want = options.credentials;
      if (want && (username !== want.username || password !== want.password)) {
        callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
        return;
      }
      logins.push({ username, password });
      callback(null, { user: username });
    },
    onRcptTo(_address, _session, callback) {
      if (reject) {
        rejections += 1;
        callback(Object.assign(new Error(reject.message), { responseCode: reject.code }));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const mailFrom = session.envelope.mailFrom;
        messages.push({
          from: mailFrom ? mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });

  // A client that drops its connection makes the server emit 'error'; unhandled, that would crash the test.
  server.on('error', () => {});
  await listen(server, 0);
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    messages,
    logins,
    get rejections() {
      return rejections;
    },
    async setDown(value: boolean) {
      if (value === down) return;
      down = value;
      if (value) {
        const closed = new Promise<void>((resolve) => server.server.close(() => resolve()));
        for (const connection of server.connections) connection.close();
        await closed;
      } else {
        await listen(server, port);
      }
    },
    setReject(code: number | null, message = 'Mailbox unavailable') {
      reject = code === null ? null : { code, message };
    },
    async stop() {
      if (down) return;
      down = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of server.connections) connection.close();
      await closed;
    },
  };
}

function listen(server: SMTPServer, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.server.once('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.server.off('error', onError);
      resolve();
    });
  });
}

/** A MIME part (or the whole message) as `parseMessage` sees it. */
export interface ParsedPart {
  /** Header names in lower case, values unfolded (encoded words left as sent). */
  headers: Record<string, string>;
  contentType: string;
  /** `filename` from Content-Disposition (or `name` from Content-Type), if any. */
  filename?: string;
  /** The body after Content-Transfer-Encoding (base64, quoted-printable) was undone. */
  body: Buffer;
  parts: ParsedPart[];
}

/**
 * A minimal MIME reader, enough to check what nodemailer sent: headers, multipart bodies, base64
 * and quoted-printable bodies, attachment file names. Not a general parser (use mailparser for that).
 */
export function parseMessage(raw: string | Buffer): ParsedPart {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  return parsePart(text);
}

/** Decodes RFC 2047 encoded words (`=?UTF-8?B?...?=`, `=?UTF-8?Q?...?=`) in a header value. */
export function decodeHeader(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, charset: string, enc: string, data: string) => {
      const bytes = enc.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64')
        : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
      return bytes.toString(/^utf-?8$/i.test(charset) ? 'utf8' : 'latin1');
    });
}

function parsePart(text: string): ParsedPart {
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const bodyText = split === -1 ? '' : text.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const contentType = headers['content-type'] ?? 'text/plain';
  const filename = param(headers['content-disposition'], 'filename') ?? param(contentType, 'name');
  const boundary = param(contentType, 'boundary');
  const parts: ParsedPart[] = [];
  if (/^multipart\//i.test(contentType) && boundary) {
    const chunks = bodyText.split(`--${boundary}`);
    for (const chunk of chunks.slice(1)) {
      if (chunk.startsWith('--')) break;
      parts.push(parsePart(chunk.replace(/^\r\n/, '').replace(/\r\n$/, '')));
    }
  }
  const encoding = (headers['content-transfer-encoding'] ?? '').toLowerCase();
  let body: Buffer;
  if (encoding === 'base64') body = Buffer.from(bodyText.replace(/\s+/g, ''), 'base64');
  else if (encoding === 'quoted-printable') {
    body = Buffer.from(
      bodyText.replace(/=\r\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    );
  } else body = Buffer.from(bodyText, 'utf8');
  return { headers, contentType, ...(filename !== undefined ? { filename } : {}), body, parts };
}

function param(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  const match = new RegExp(`;\\s*${name}\\s*=\\s*("([^"]*)"|[^;\\s]+)`, 'i').exec(header);
  if (!match) return undefined;
  return decodeHeader(match[2] ?? match[1] ?? '');
}
