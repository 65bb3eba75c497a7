export { PresenceService, PAUSE_RECHECK_MS, type PresenceServiceDeps } from './service.js';
export { parseDuration, formatDuration, MAX_PAUSE_MS } from './duration.js';
export { PresenceError, UnknownAgentError, type PresenceErrorCode } from './errors.js';
export { composePresence, REASON_DISABLED, REASON_UNREGISTERED } from './compose.js';
export { makeManualEntry, MAX_REASON_LENGTH, type ManualOptions } from './manual.js';
export { factsFromAmi, factsFromAri, BUSY_DEVICE_STATES, type Fact } from './sources.js';
export {
  STATE_FILE_NAME,
  STATUS_FILE_NAME,
  stateFileIn,
  statusFileIn,
  readManualDoc,
  readStatusDoc,
  updateManualDoc,
  entryActive,
  daemonRunning,
} from './state-file.js';
export {
  PRESENCE_STATES,
  MANUAL_STATES,
  realSetTimer,
  type PresenceState,
  type ManualState,
  type AgentPresence,
  type PresenceDetail,
  type ManualEntry,
  type ManualStateDoc,
  type PresenceStatusDoc,
  type SetTimer,
  type CancelTimer,
} from './types.js';
