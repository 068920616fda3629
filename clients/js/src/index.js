// switchboard-client: the official JavaScript client of Switchboard
// (docs/clients.md). ES module, no runtime dependencies.
export { SwitchboardClient, SwitchboardError, closePolicy } from './client.js';
export { backoffCap, backoffDelay } from './backoff.js';
export { memoryStore } from './positions.js';
export { refreshDelay, tokenExpiry } from './token.js';
