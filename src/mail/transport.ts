import nodemailer, { type SendMailOptions } from 'nodemailer';

/** SMTP settings (from switchboard.ini [smtp]). */
export interface SmtpSettings {
  host: string;
  port: number;
  /** TLS from the first byte (port 465). Default false: plain, upgraded with STARTTLS when offered. */
  secure?: boolean;
  /** Never use STARTTLS even if offered (a local relay without TLS). Default false. */
  ignoreTLS?: boolean;
  /** Refuse to send unless STARTTLS succeeds. Default false. */
  requireTLS?: boolean;
  /** Both or neither: login is used only when `user` is set. */
  user?: string;
  pass?: string;
  /** The envelope sender and From: header, e.g. "Switchboard <voicemail@example.com>". */
  from: string;
  connectionTimeoutMs?: number;
  greetingTimeoutMs?: number;
  socketTimeoutMs?: number;
}

/** What MailOutbox needs from a transport: a nodemailer Transporter fits, and so does a test fake. */
export interface MailTransport {
  sendMail(mail: SendMailOptions): Promise<{ response?: string; accepted?: unknown[]; rejected?: unknown[] }>;
}

/**
 * A nodemailer SMTP transport, one connection per message (no pool: the outbox sends one at a
 * time). Timeouts are shorter than nodemailer's (2 min to connect, 10 min idle) so a dead server
 * turns into a retry rather than a stuck worker. nodemailer's own logging stays off: it could show
 * the AUTH exchange.
 */
export function createSmtpTransport(settings: SmtpSettings): MailTransport & { close(): void } {
  return nodemailer.createTransport({
    host: settings.host,
    port: settings.port,
    secure: settings.secure ?? false,
    ignoreTLS: settings.ignoreTLS ?? false,
    requireTLS: settings.requireTLS ?? false,
    ...(settings.user ? { auth: { user: settings.user, pass: settings.pass ?? '' } } : {}),
    connectionTimeout: settings.connectionTimeoutMs ?? 30_000,
    greetingTimeout: settings.greetingTimeoutMs ?? 30_000,
    socketTimeout: settings.socketTimeoutMs ?? 60_000,
    logger: false,
    debug: false,
  });
}

/** `smtp://user@host:port` for logs: never the password. */
export function describeSmtp(settings: SmtpSettings): string {
  const scheme = settings.secure ? 'smtps' : 'smtp';
  const user = settings.user ? `${encodeURIComponent(settings.user)}@` : '';
  return `${scheme}://${user}${settings.host}:${settings.port}`;
}
