import { SwitchboardError } from '../errors.js';
export class PresenceError extends SwitchboardError {
    constructor(code, message, details = {}, options) {
        super(code, message, details, options);
    }
}
export class UnknownAgentError extends PresenceError {
    constructor(agent, where = 'the store') {
        super('PRESENCE_UNKNOWN_AGENT', `agent "${agent}" is not in ${where}: give an agent id or username (e.g. "1001" or "alice.smith")`, { agent });
    }
}
//# sourceMappingURL=errors.js.map