export { AriClient, withTimeout, type AriClientDeps, type AriStartOptions, type ConnectFn } from './client.js';
export { AriRequestError, ARI_PEER, isNotFound, toAriError } from './errors.js';
export * from './types.js';
