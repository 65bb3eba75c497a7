import nodemailer from 'nodemailer';
/**
 * A nodemailer SMTP transport, one connection per message (no pool: the outbox sends one at a
 * time). Timeouts are shorter than nodemailer's (2 min to connect, 10 min idle) so a dead server
 * turns into a retry rather than a stuck worker. nodemailer's own logging stays off: it could show
 * the AUTH exchange.
 */
export function createSmtpTransport(settings) {
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
export function describeSmtp(settings) {
    const scheme = settings.secure ? 'smtps' : 'smtp';
    const user = settings.user ? `${encodeURIComponent(settings.user)}@` : '';
    return `${scheme}://${user}${settings.host}:${settings.port}`;
}
//# sourceMappingURL=transport.js.map