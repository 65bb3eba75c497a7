export { Applier } from './applier.js';
export { ApplyLockedError, ApplyRolledBackError, describeRefused } from './errors.js';
//# sourceMappingURL=index.js.map