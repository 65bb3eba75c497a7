import { SwitchboardError } from '../errors.js';
/** A call record (or a patch to one) has a field the store cannot accept. */
export class CallRecordInvalidError extends SwitchboardError {
    issues;
    constructor(interactionId, issues) {
        super('CALL_RECORD_INVALID', `call record "${interactionId}": ${issues.join('; ')}`, { interactionId, issues });
        this.issues = issues;
    }
}
/** `insert` with an interaction id that is already stored. */
export class CallRecordExistsError extends SwitchboardError {
    constructor(interactionId) {
        super('CALL_RECORD_EXISTS', `call record "${interactionId}" already exists: use update() to change it`, { interactionId });
    }
}
/** `update` of an interaction id that is not stored. */
export class CallRecordNotFoundError extends SwitchboardError {
    constructor(interactionId) {
        super('CALL_RECORD_NOT_FOUND', `call record "${interactionId}" does not exist`, { interactionId });
    }
}
/** The call-records database cannot be opened or was written by a newer switchboard. */
export class CallRecordsStoreError extends SwitchboardError {
    constructor(path, message, options) {
        super('CALL_RECORDS_STORE', `call records database ${path}: ${message}`, { path }, options);
    }
}
/** A query filter is wrong (bad date, limit). */
export class CallQueryInvalidError extends SwitchboardError {
    constructor(message) {
        super('CALL_QUERY_INVALID', `call records query: ${message}`);
    }
}
//# sourceMappingURL=errors.js.map