/**
 * One base class for every error switchboard raises on purpose. `code` is stable (tests, `--json`
 * output and exit codes rely on it); `message` says what went wrong and how to fix it.
 */
export class SwitchboardError extends Error {
    code;
    details;
    constructor(code, message, details = {}, options) {
        super(message, options);
        this.name = new.target.name;
        this.code = code;
        this.details = details;
    }
}
/** The agent store (or one file of it) is invalid; `issues` lists every problem found. */
export class StoreInvalidError extends SwitchboardError {
    issues;
    constructor(issues, summary) {
        super('STORE_INVALID', summary ?? `the agent store has ${issues.length} issue(s):\n` + issues.map((i) => `  - ${i.message}`).join('\n'));
        this.issues = issues;
    }
}
/** A settings value (switchboard.ini, environment, flag) is missing or wrong. */
export class SettingsError extends SwitchboardError {
    constructor(message, details = {}) {
        super('SETTINGS_INVALID', message, details);
    }
}
/** A peer (AMI, ARI, SMTP) did not answer in time. */
export class PeerTimeoutError extends SwitchboardError {
    constructor(peer, what, ms) {
        super('PEER_TIMEOUT', `${peer}: ${what} got no answer within ${ms} ms`, { peer, what, ms });
    }
}
/** A peer is not connected (or the connection dropped while a request was pending). */
export class PeerDisconnectedError extends SwitchboardError {
    constructor(peer, what) {
        super('PEER_DISCONNECTED', `${peer}: ${what} failed: not connected`, { peer, what });
    }
}
/** A peer refused our credentials. Retrying will not help until the settings change. */
export class PeerAuthError extends SwitchboardError {
    constructor(peer, message) {
        super('PEER_AUTH', `${peer}: authentication failed: ${message}. Check the user and secret in switchboard.ini`, { peer });
    }
}
/** A peer answered with an error. */
export class PeerRequestError extends SwitchboardError {
    constructor(peer, what, message, details = {}) {
        super('PEER_ERROR', `${peer}: ${what} failed: ${message}`, { peer, what, ...details });
    }
}
export function errorMessage(err) {
    if (err instanceof Error)
        return err.message;
    return typeof err === 'string' ? err : JSON.stringify(err);
}
//# sourceMappingURL=errors.js.map