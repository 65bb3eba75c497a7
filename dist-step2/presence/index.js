export { PresenceService } from './service.js';
export { parseDuration, formatDuration, MAX_PAUSE_MS } from './duration.js';
export { PresenceError, UnknownAgentError } from './errors.js';
export { composePresence, REASON_DISABLED, REASON_UNREGISTERED } from './compose.js';
export { makeManualEntry, MAX_REASON_LENGTH } from './manual.js';
export { factsFromAmi, factsFromAri, BUSY_DEVICE_STATES } from './sources.js';
export { STATE_FILE_NAME, STATUS_FILE_NAME, stateFileIn, statusFileIn, readManualDoc, readStatusDoc, updateManualDoc, entryActive, daemonRunning, } from './state-file.js';
export { PRESENCE_STATES, MANUAL_STATES, realSetTimer, } from './types.js';
//# sourceMappingURL=index.js.map