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
    /** The data directory (presence state, call records, outbox) cannot be read or written. */
    DATA: 7,
    /** Anything unexpected (a bug: please report it). */
    INTERNAL: 70,
};
export function exitCodeForError(code) {
    switch (code) {
        case 'STORE_INVALID':
            return EXIT.INVALID_OR_DIFFERENT;
        case 'SETTINGS_INVALID':
        case 'TEMPLATES_MISSING':
        case 'TEMPLATE_INVALID':
        case 'EMAIL_TEMPLATE_INVALID':
        case 'USAGE':
        case 'GENERATION_NOT_FOUND':
        case 'PRESENCE_UNKNOWN_AGENT':
        case 'PRESENCE_BAD_DURATION':
        case 'PRESENCE_INVALID':
        case 'CALL_QUERY_INVALID':
            return EXIT.USAGE;
        case 'RENDER_CHECK_FAILED':
        case 'RECORDING_UNAVAILABLE':
        case 'CALL_RECORD_NOT_FOUND':
            return EXIT.INVALID_OR_DIFFERENT;
        case 'PRESENCE_STATE_FILE':
        case 'CALL_RECORDS_STORE':
        case 'MAIL_OUTBOX_STORAGE':
        case 'GENERATION_DAMAGED':
            // The data directory (presence.json, calls.sqlite, outbox) or a kept generation is unreadable,
            // damaged or locked.
            return EXIT.DATA;
        case 'APPLY_ROLLED_BACK':
        case 'MODULE_NOT_LOADED':
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
//# sourceMappingURL=exit-codes.js.map