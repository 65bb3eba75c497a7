export { Applier, type ApplyOptions } from './applier.js';
export { ApplyLockedError, ApplyRolledBackError, describeRefused } from './errors.js';
export type { AmiPort, ApplyDeps, ApplyReport, GenerationInfo, RefusedOption } from './types.js';
