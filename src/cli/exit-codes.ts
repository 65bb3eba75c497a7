/** Exit codes of the `switchboard` CLI (documented in the README). */
export const EXIT = {
  OK: 0,
  /** validate: the store has errors; diff: there are differences. */
  INVALID_OR_DIFFERENT: 1,
  /** Bad command line or settings file. */
  USAGE: 2,
  /** apply: Asterisk refused the change; the previous generation was restored. */
  ROLLED_BACK: 3,
  /** A peer (AMI, ARI, SMTP) could not be reached or refused our credentials. */
  PEER_UNAVAILABLE: 4,
  /** Another apply holds the lock. */
  LOCKED: 5,
  /** apply: applied, but a transport change needs an Asterisk restart. */
  RESTART_NEEDED: 6,
  /** Anything unexpected (a bug: please report it). */
  INTERNAL: 70,
} as const;

export function exitCodeForError(code: string | undefined): number {
  switch (code) {
    case 'STORE_INVALID':
      return EXIT.INVALID_OR_DIFFERENT;
    case 'SETTINGS_INVALID':
    case 'TEMPLATES_MISSING':
    case 'TEMPLATE_INVALID':
    case 'USAGE':
      return EXIT.USAGE;
    case 'APPLY_ROLLED_BACK':
      return EXIT.ROLLED_BACK;
    case 'PEER_TIMEOUT':
    case 'PEER_DISCONNECTED':
    case 'PEER_AUTH':
    case 'PEER_ERROR':
      return EXIT.PEER_UNAVAILABLE;
    case 'APPLY_LOCKED':
      return EXIT.LOCKED;
    default:
      return EXIT.INTERNAL;
  }
}
