/**
 * Errors specific to the AMI client (the generic peer errors live in src/errors.ts).
 */
import { PeerDisconnectedError } from '../../errors.js';

/** `details.reason` of an AmiPeerUnresponsiveError: tells a dead-peer teardown from a plain disconnect. */
export const AMI_PEER_UNRESPONSIVE = 'AMI_PEER_UNRESPONSIVE';

/**
 * The TCP connection was still open but Asterisk stopped answering (it hung, or a NAT box or
 * firewall silently dropped the connection): a liveness `Ping` got no reply, so the client
 * destroyed the socket and reconnects. Every action pending on that connection fails with this.
 *
 * It is a PeerDisconnectedError (code `PEER_DISCONNECTED`), so everything that retries or maps a
 * lost AMI connection (daemon apply retry, CLI exit codes) treats it the same way; tell it apart
 * with `instanceof` or `details.reason === AMI_PEER_UNRESPONSIVE`.
 */
export class AmiPeerUnresponsiveError extends PeerDisconnectedError {
  constructor(what: string, where: { host: string; port: number; pingTimeoutMs: number }) {
    super('AMI', what);
    this.message =
      `AMI: ${what} failed: the AMI peer at ${where.host}:${where.port} stopped answering ` +
      `(no reply to Ping within ${where.pingTimeoutMs} ms); switchboard dropped the connection and reconnects`;
    Object.assign(this.details, { reason: AMI_PEER_UNRESPONSIVE, host: where.host, port: where.port, pingTimeoutMs: where.pingTimeoutMs });
  }
}
