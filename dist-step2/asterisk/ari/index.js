export { AriClient, withTimeout } from './client.js';
export { AriRequestError, ARI_PEER, isNotFound, toAriError } from './errors.js';
export * from './types.js';
//# sourceMappingURL=index.js.map